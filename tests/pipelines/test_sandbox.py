"""The LF sandbox: user code runs in a child process with a time limit; errors carry lines."""

import pytest

from pipelines.errors import ConfigError
from pipelines.sandbox import SandboxConfig, run_lf_source

CLASSES = ["auto_collision", "property_water", "property_fire"]
RECORDS = [{"id": f"r{i}", "text": t, "prompt": t, "response": "s", "gold": {"x": "secret"}}
           for i, t in enumerate(["a fire in the garage", "water leak in the bath",
                                  "rear-end collision", "nothing to see"])]


def test_votes_coverage_faults_and_conflicts():
    src = (
        "def lf_fire(x):\n"
        "    return 2 if 'fire' in x.text else -1\n"
        "\n"
        "def lf_water(x):\n"
        "    if 'nothing' in x.text:\n"
        "        raise KeyError('boom')\n"
        "    return 'property_water' if 'water' in x.text or 'fire' in x.text else None\n"
        "\n"
        "def helper(x):\n"          # not an LF: no lf_ prefix, no decorator
        "    return 0\n"
    )
    res = run_lf_source(src, RECORDS, CLASSES)
    assert res.ok, res.error
    by = {lf.name: lf for lf in res.lfs}
    assert set(by) == {"lf_fire", "lf_water"}
    assert by["lf_fire"].votes == [2, -1, -1, -1]
    assert by["lf_water"].votes == [1, 1, -1, -1]           # class name mapped, None abstains
    assert by["lf_water"].faults == 1
    assert by["lf_water"].fault_examples[0] == {"id": "r3", "line": 6, "error": "KeyError: 'boom'"}
    assert by["lf_fire"].coverage == 0.25
    rows = {r["lf"]: r for r in res.summary(CLASSES)}
    assert rows["lf_fire"]["conflicts"] == 0.25 and rows["lf_water"]["conflicts"] == 0.25
    assert rows["lf_water"]["property_water"] == 2


def test_gold_is_never_passed_to_user_code():
    res = run_lf_source("def lf_peek(x):\n    return 0 if hasattr(x, 'gold') else 1\n",
                        RECORDS, CLASSES)
    assert res.lfs[0].votes == [1, 1, 1, 1]


@pytest.mark.parametrize("src, error, line", [
    ("def lf_a(x):\n    return 0\n  oops\n", "SyntaxError", 3),
    ("import math\nvalue = 1 / 0\n", "ZeroDivisionError", 2),
    ("x = 1\n", "no labeling function found", None),
    ("from snorkel.labeling import labeling_function\n"
     "lf_a = labeling_function(name='same')(lambda x: 0)\n"
     "lf_b = labeling_function(name='same')(lambda x: 1)\n", "unique; repeated: same", None),
])
def test_module_errors_name_their_line(src, error, line):
    res = run_lf_source(src, RECORDS, CLASSES)
    assert not res.ok and error in res.error and res.error_line == line


def test_bad_votes_are_faults_at_the_def_line():
    res = run_lf_source("\ndef lf_big(x):\n    return 7\n\n"
                        "def lf_unknown(x):\n    return 'windstorm' if 'fire' in x.text else -1\n",
                        RECORDS, CLASSES)
    big, unknown = res.lfs
    assert big.faults == 4 and big.votes == [-1] * 4
    assert big.fault_examples[0]["line"] == 2 and "returned 7" in big.fault_examples[0]["error"]
    assert unknown.faults == 1 and unknown.votes == [-1] * 4
    assert unknown.fault_examples == [{"id": "r0", "line": 5, "error": (
        "ValueError: returned 'windstorm', not a class of the scheme "
        "(auto_collision, property_water, property_fire)")}]


def test_endless_loop_is_stopped_by_the_time_limit():
    res = run_lf_source("def lf_spin(x):\n    while True:\n        pass\n", RECORDS, CLASSES,
                        config=SandboxConfig(timeout_s=2))
    assert not res.ok and "time limit" in res.error
    assert res.elapsed_s < 10


def test_hard_exit_of_the_child_is_reported():
    res = run_lf_source("import os\ndef lf_die(x):\n    os._exit(3)\n", RECORDS, CLASSES)
    assert not res.ok and "exit status 3" in res.error


def test_snorkel_lfs_and_context_modules(tmp_path, monkeypatch):
    mod = tmp_path / "ctx_lfs.py"
    mod.write_text("def lf_ctx(x):\n    return 0 if 'collision' in x.text else -1\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    src = ("from snorkel.labeling import labeling_function\n"
           "@labeling_function()\n"
           "def lf_crash(x):\n"
           "    return 1 if 'collision' in x.text else -1\n")
    res = run_lf_source(src, RECORDS, CLASSES, context_modules=["ctx_lfs"])
    assert res.ok, res.error
    assert res.lfs[0].votes == [-1, -1, 1, -1]
    assert [c.name for c in res.context] == ["lf_ctx"]
    assert res.summary(CLASSES)[0]["conflicts"] == 0.25


def test_config_is_validated():
    with pytest.raises(ConfigError, match="timeout_s"):
        SandboxConfig(timeout_s=0)


def test_template_runs_and_save_is_atomic_and_checked(fresh_ws):
    from pipelines.errors import LabelingError
    from pipelines.sandbox import lf_files, lf_template, save_lf_source

    src = lf_template("claim_type", CLASSES)
    res = run_lf_source(src.replace('"some phrase"', '"fire"'), RECORDS, CLASSES,
                        scheme="claim_type")
    assert res.ok, res.error
    assert res.lfs[0].votes == [0, -1, -1, -1]   # AUTO_COLLISION = 0 for a "fire" note

    with pytest.raises(ConfigError, match="module name"):
        save_lf_source(fresh_ws, "../evil", src)
    with pytest.raises(LabelingError, match="line 2: SyntaxError"):
        save_lf_source(fresh_ws, "broken", "x = 1\ndef f(:\n")
    assert lf_files(fresh_ws) == []
    path = save_lf_source(fresh_ws, "studio_rules", src)
    assert path == fresh_ws.path / "lfs" / "studio_rules.py" and path.read_text() == src
    assert [p.name for p in lf_files(fresh_ws)] == ["studio_rules.py"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


EDITOR_SOURCE = '''\
from snorkel.labeling import labeling_function

SCHEME = "claim_type"


def lf_fire_by_name(x):                 # plain, votes a class name or None
    return "property_fire" if "fire" in x.text else None


@labeling_function()
def lf_water_by_index(x):               # decorated, votes an index or -1
    return 1 if "water" in x.text else -1


def lf_unknown_name(x):                 # a name outside the scheme: a fault, not fatal
    return "windstorm" if "collision" in x.text else -1
'''


def _editor_ws(fresh_ws):
    from pipelines.store import NewRecord, upsert_record, utcnow

    fresh_ws.config_path.write_text(
        "schema: text\nschemes:\n  claim_type:\n"
        f"    classes: [{', '.join(CLASSES)}]\n    lf_modules: []\n")
    with fresh_ws.transaction() as conn:
        for i, r in enumerate(RECORDS):
            upsert_record(conn, NewRecord(id=r["id"], kind="text", text=r["text"],
                                          prompt=r["prompt"], file="inline", row=i + 1), utcnow())
    return fresh_ws


def test_an_lf_saved_from_the_editor_votes_the_same_in_the_next_labeling_run(fresh_ws):
    """The editor's try, its save into W/lfs and `run_labeling` (what `curate label` and the
    studio's re-label call) share one discoverer and one applier: the same votes, the same
    faults."""
    from pipelines.sandbox import save_lf_source
    from pipelines.store import list_records
    from pipelines.weak_supervision import LabelConfig, load_matrix, run_labeling

    ws = _editor_ws(fresh_ws)
    with ws.connect() as conn:
        sample = list_records(conn)          # what the studio's try passes
    shown = run_lf_source(EDITOR_SOURCE, sample, CLASSES, scheme="claim_type")
    assert shown.ok, shown.error
    by_id = {lf.name: dict(zip(shown.record_ids, lf.votes)) for lf in shown.lfs}
    assert by_id["lf_fire_by_name"]["r0"] == 2 and by_id["lf_water_by_index"]["r1"] == 1
    faults = {lf.name: lf.faults for lf in shown.lfs}
    assert faults == {"lf_fire_by_name": 0, "lf_water_by_index": 0, "lf_unknown_name": 1}

    save_lf_source(ws, "analyst_rules", EDITOR_SOURCE)
    result = run_labeling(ws, LabelConfig(scheme="claim_type", model="majority"))
    L, ids, names = load_matrix(result.matrix_path)
    assert sorted(names) == sorted(by_id)
    for j, name in enumerate(names):
        assert {rid: int(v) for rid, v in zip(ids, L[:, j])} == by_id[name], name
    assert {s["lf"]: s["faults"] for s in result.lf_summary} == faults
    assert "windstorm" in next(s["fault_message"] for s in result.lf_summary
                               if s["lf"] == "lf_unknown_name")


def test_an_lf_that_allocates_past_the_memory_limit_gets_a_fault_not_the_machine():
    src = ("def lf_hog(x):\n"
           "    block = bytearray(2 << 30)\n"        # 2 GiB, over the 1 GiB limit below
           "    return 0\n")
    res = run_lf_source(src, RECORDS[:2], CLASSES,
                        config=SandboxConfig(memory_limit_mb=1024, timeout_s=60))
    assert res.ok, (res.error, res.stderr)
    (lf,) = res.lfs
    assert lf.faults == 2 and "MemoryError" in lf.fault_examples[0]["error"]
    # without the limit the same LF allocates fine (the limit, not the machine, refused it)
    free = run_lf_source(src, RECORDS[:1], CLASSES,
                         config=SandboxConfig(memory_limit_mb=0, timeout_s=60))
    assert free.ok and free.lfs[0].faults == 0, free.error


def test_a_process_the_lf_starts_is_gone_after_the_time_limit_kill(tmp_path):
    from pipelines.launch import pid_alive

    pid_file = tmp_path / "grandchild.pid"
    src = ("import subprocess\n"
           "def lf_spawns(x):\n"
           f"    p = subprocess.Popen(['sleep', '300'])\n"
           f"    open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
           "    while True:\n"
           "        pass\n")
    res = run_lf_source(src, RECORDS[:1], CLASSES, config=SandboxConfig(timeout_s=20))
    assert not res.ok and "time limit" in res.error, res.error
    assert pid_file.is_file(), res.stderr
    pid = int(pid_file.read_text())
    import time

    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"the LF's child {pid} outlived the sandbox"
