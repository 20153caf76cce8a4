"""Review sync: pure mappings and store logic without a server, then a real Label Studio.

The integration tests share ONE server (the session fixture `labelstudio_server` in
tests/conftest.py); each test has its own workspace, hence its own projects.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, ReviewSyncError
from pipelines.review import agreement
from pipelines.review._client import (
    LabelStudioClient,
    annotation_to_result,
    choice_result,
    label_config,
    record_to_task,
)
from pipelines.review.server import WorkspaceServer, find_label_studio
from pipelines.review.sync import ReviewConfig, connect, pull, push, review_status
from pipelines.store import (
    NewRecord,
    Record,
    Turn,
    Workspace,
    render_turns,
    upsert_record,
    utcnow,
)
from pipelines.store.review import (
    StoredAnnotation,
    push_candidates,
    resolve_push_batch,
    review_rows,
    seed_labels,
    store_annotations,
)

CLASSES = ["auto", "water", "fire"]


def make_ws(path, n=6, kind="instruction", confidences=None, classes=CLASSES) -> Workspace:
    """A workspace with `n` records of `kind`, weak labels with rising confidence."""
    ws = Workspace.create(path)
    ws.config_path.write_text(
        f"schema: {kind}\nschemes:\n  claim:\n    classes: {json.dumps(classes)}\n")
    confidences = confidences or [round(0.5 + 0.05 * i, 2) for i in range(n)]
    with ws.transaction() as conn:
        ids = []
        for i in range(n):
            rid = hashlib.sha256(f"{path}-{i}".encode()).hexdigest()
            if kind == "instruction":
                rec = NewRecord(id=rid, kind=kind, text=f"note {i}", prompt=f"claim note {i}",
                                response=f"summary {i}")
            elif kind == "chat":
                msgs = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"},
                        {"role": "user", "content": "more?"}, {"role": "assistant", "content": f"b{i}"}]
                rec = NewRecord(id=rid, kind=kind, text=render_turns(Turn(**m) for m in msgs),
                                messages=msgs)
            else:
                rec = NewRecord(id=rid, kind=kind, text=f"text {i}")
            upsert_record(conn, rec, utcnow())
            ids.append(rid)
        seed_labels(conn, "claim", [(rid, classes[i % len(classes)], confidences[i])
                                    for i, rid in enumerate(ids)])
    return ws


def rows_by_record(ws) -> dict[str, dict]:
    with ws.connect() as conn:
        return {r["record_id"]: r for r in review_rows(conn, "claim")}


# -- pure mappings -------------------------------------------------------------------------------
def test_label_config_instruction_has_prompt_response_choices_and_textarea():
    xml = label_config("instruction", ["a&b", 'say "x"', "fire"])
    root = ET.fromstring(xml)
    texts = {t.get("name"): t.get("value") for t in root.iter("Text")}
    assert texts == {"prompt": "$prompt", "response": "$response"}
    choices = root.find(".//Choices")
    assert choices.get("name") == "label" and choices.get("choice") == "single"
    assert [c.get("value") for c in choices.iter("Choice")] == ["a&b", 'say "x"', "fire"]
    area = root.find(".//TextArea")
    assert area.get("name") == "edited_response" and area.get("toName") == "response"


def test_label_config_text_has_no_textarea():
    root = ET.fromstring(label_config("text", CLASSES))
    assert [t.get("value") for t in root.iter("Text")] == ["$text"]
    assert root.find(".//TextArea") is None
    with pytest.raises(ReviewSyncError):
        label_config("text", [])


def test_record_to_task_carries_ids_and_prediction():
    rec = Record(id="r1", kind="instruction", text="t", prompt="P", response="R")
    task = record_to_task(rec, batch_id="b1", label="fire", confidence=0.42, model_version="run-3")
    assert task["data"] == {"ext_id": "r1", "push_batch": "b1", "prompt": "P", "response": "R"}
    (pred,) = task["predictions"]
    assert pred["model_version"] == "run-3" and pred["score"] == 0.42
    assert pred["result"][0]["value"] == {"choices": ["fire"]}
    assert pred["result"][0]["to_name"] == "prompt"
    assert "predictions" not in record_to_task(rec, batch_id="b1")  # all LFs abstained
    turns = (Turn("user", "hi"), Turn("assistant", "hello"))
    chat = Record(id="c", kind="chat", text=render_turns(turns), turns=turns)
    assert chat.text == "user: hi\nassistant: hello"   # what LFs and embeddings read
    # the reviewer sees the same turns, a blank line between them
    assert record_to_task(chat, batch_id="b")["data"]["text"] == "user: hi\n\nassistant: hello"


def test_chat_is_reviewed_turn_by_turn_with_paragraphs():
    root = ET.fromstring(label_config("chat", CLASSES))
    (para,) = root.iter("Paragraphs")
    assert (para.get("name"), para.get("value"), para.get("layout"), para.get("nameKey"),
            para.get("textKey")) == ("dialogue", "$dialogue", "dialogue", "role", "content")
    assert root.find(".//Choices").get("toName") == "dialogue" and root.find(".//Text") is None
    turns = (Turn("system", "be brief"), Turn("user", "q1"), Turn("assistant", "a1"),
             Turn("user", "q2"), Turn("assistant", "a2"))
    chat = Record(id="c3", kind="chat", text=render_turns(turns), turns=turns)
    task = record_to_task(chat, batch_id="b", label="fire", confidence=0.5)
    assert task["data"]["dialogue"] == [t.to_dict() for t in turns]   # every turn, in order
    assert task["predictions"][0]["result"][0]["to_name"] == "dialogue"
    # what a reviewer submits on that view comes back as the record's label
    got = annotation_to_result({"id": 9, "result": choice_result("water", "chat")}, CLASSES)
    assert got.label == "water" and got.problem is None
    # text records keep the Text-based view
    assert [t.get("value") for t in ET.fromstring(label_config("text", CLASSES)).iter("Text")] \
        == ["$text"]


def test_annotation_to_result_label_edit_skip_and_bad_choice():
    ok = annotation_to_result({"id": 5, "completed_by": {"id": 2}, "updated_at": "u",
                               "result": choice_result("fire", "instruction", "better summary")},
                              CLASSES)
    assert (ok.label, ok.edited_response, ok.skipped, ok.problem, ok.annotator_id) == \
        ("fire", "better summary", False, None, 2)
    bad = annotation_to_result({"id": 6, "completed_by": 1,
                                "result": choice_result("theft", "text")}, CLASSES)
    assert bad.label is None and "theft" in bad.problem
    skipped = annotation_to_result({"id": 7, "was_cancelled": True, "result": []}, CLASSES)
    assert skipped.skipped and skipped.label is None and skipped.problem is None


def test_agreement_on_a_constructed_case():
    # Two raters, 10 items: 4x (a,a), 3x (b,b), 2x (a,b), 1x (b,a); one item with one rating.
    pairs = [("a", "a")] * 4 + [("b", "b")] * 3 + [("a", "b")] * 2 + [("b", "a")]
    ratings = [(f"i{k}", r, lab) for k, (x, y) in enumerate(pairs) for r, lab in (("A", x), ("B", y))]
    ratings.append(("lonely", "A", "a"))
    out = agreement(ratings)
    assert out["items"] == 10 and out["agreed"] == 7
    assert out["percent_agreement"] == pytest.approx(0.7)
    # po = .7, pe = (6*5 + 4*5)/100 = .5 -> .4 ; Fleiss: pe = .55^2 + .45^2 = .505
    assert out["cohen_kappa"] == pytest.approx(0.4)
    assert out["fleiss_kappa"] == pytest.approx((0.7 - 0.505) / 0.495, abs=1e-4)
    three = agreement([("x", "A", "a"), ("x", "B", "a"), ("x", "C", "b")])
    assert three["cohen_kappa"] is None and three["percent_agreement"] == pytest.approx(1 / 3, abs=1e-4)
    assert agreement([])["items"] == 0


# -- store logic without a server ----------------------------------------------------------------
def test_push_candidates_order_budget_confidence_and_exclusion(tmp_path):
    ws = make_ws(tmp_path / "ws", n=5, confidences=[0.9, 0.3, 0.7, 0.95, 0.5])
    with ws.transaction() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM records ORDER BY rowid")]
        conn.execute("INSERT INTO dedup (record_id, excluded, reason) VALUES (?, 1, 'dup')",
                     (ids[4],))
        conn.execute("UPDATE labels SET label = NULL, confidence = NULL WHERE record_id = ?",
                     (ids[2],))
    with ws.connect() as conn:
        cands = push_candidates(conn, "claim")
        got = [c.id for c in cands]
        assert got == [ids[2], ids[1], ids[0], ids[3]]  # abstained first, excluded left out
        assert cands[1].state.confidence == 0.3 and cands[0].state.label is None
        assert cands[1].record.prompt == "claim note 1" and cands[1].record.gold is None
        assert [r.id for r in push_candidates(conn, "claim", budget=2)] == [ids[2], ids[1]]
        assert [r.id for r in push_candidates(conn, "claim", max_confidence=0.9)] == \
            [ids[2], ids[1], ids[0]]
    with ws.transaction() as conn:
        resolve_push_batch(conn, "b", "claim", 1, {ids[1]: 11})
    with ws.connect() as conn:
        assert ids[1] not in [r.id for r in push_candidates(conn, "claim")]


class _FakeClient:
    """Just enough of LabelStudioClient for a push, without a server."""

    url = "http://fake"

    def __init__(self):
        self.imported: list[dict] = []

    def check(self):
        return {"id": 1, "email": "x"}

    def get_project(self, project_id):
        return {"id": project_id, "task_number": len(self.imported)}

    def create_project(self, title, label_config, description):
        return 7

    def import_tasks(self, project_id, tasks):
        self.imported += tasks
        return list(range(len(self.imported) - len(tasks), len(self.imported)))

    def set_model_version(self, project_id, model_version):
        pass

    def tasks_of_batch(self, project_id, batch_id):
        return {}


def test_push_reads_curation_yaml_once_and_sends_candidates(tmp_path, monkeypatch):
    import pipelines.review.sync as sync

    ws = make_ws(tmp_path / "ws", n=3, confidences=[0.9, 0.3, 0.6])
    calls = []
    real = sync.load_config
    monkeypatch.setattr(sync, "load_config", lambda p: calls.append(p) or real(p))
    client = _FakeClient()
    res = push(ws, "claim", client=client)
    assert len(calls) == 1
    assert res.created == 3 and res.project_created
    assert [t["data"]["prompt"] for t in client.imported] == \
        ["claim note 1", "claim note 2", "claim note 0"]   # least confident first
    assert client.imported[0]["predictions"][0]["score"] == 0.3


def test_store_annotations_new_updated_removed_and_majority(tmp_path):
    ws = make_ws(tmp_path / "ws", n=2)
    with ws.connect() as conn:
        rid = push_candidates(conn, "claim")[0].id
    with ws.transaction() as conn:
        resolve_push_batch(conn, "b", "claim", 1, {rid: 10})

    def ann(aid, who, label, updated, edited=None, skipped=False):
        return StoredAnnotation(aid, 10, rid, who, label, edited, skipped, None, "c", updated)

    with ws.transaction() as conn:
        c = store_annotations(conn, "claim", 1, {10: [ann(1, "x", "fire", "t1"),
                                                      ann(2, "y", "auto", "t2", "fixed")]}, "now")
    assert c == {"new": 2, "updated": 0, "removed": 0, "unchanged": 0}
    row = rows_by_record(ws)[rid]
    assert row["status"] == "reviewed" and row["human_label"] == "auto"  # tie: latest wins
    assert row["edited_response"] == "fixed" and row["reviewer"] == "x, y"
    with ws.transaction() as conn:
        c = store_annotations(conn, "claim", 1, {10: [ann(1, "x", "fire", "t1"),
                                                      ann(2, "y", "fire", "t3"),
                                                      ann(3, "z", "auto", "t4")]}, "now")
    assert c == {"new": 1, "updated": 1, "removed": 0, "unchanged": 1}
    assert rows_by_record(ws)[rid]["human_label"] == "fire"  # 2 of 3
    with ws.transaction() as conn:
        c = store_annotations(conn, "claim", 1, {10: [ann(4, "x", None, "t5", skipped=True)]},
                              "now")
    assert c["removed"] == 3 and c["new"] == 1
    assert rows_by_record(ws)[rid]["status"] == "skipped"


def test_review_config_and_missing_server(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="batch_size"):
        ReviewConfig(batch_size=0)
    with pytest.raises(ConfigError, match="review.url"):
        ReviewConfig(url="localhost:8080")
    monkeypatch.setenv("CURATE_LABELSTUDIO_BIN", str(tmp_path / "nope" / "label-studio"))
    with pytest.raises(ReviewSyncError, match="make labelstudio-venv"):
        find_label_studio()
    ws = make_ws(tmp_path / "ws", n=1)
    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    with pytest.raises(ReviewSyncError, match="curate labelstudio start"):
        connect(ws)
    with pytest.raises(ConfigError, match="budget must be >= 0, got -1"):
        push(ws, "claim", budget=-1)
    with pytest.raises(ConfigError, match=r"max_confidence must be in \[0, 1\], got 1.5"):
        push(ws, "claim", max_confidence=1.5)


def test_workspace_credentials_are_private_and_stable(tmp_path):
    server = WorkspaceServer(tmp_path / "labelstudio")
    a = server.credentials(port=8123)
    assert stat.S_IMODE(os.stat(server.credentials_path).st_mode) == 0o600
    b = server.credentials()
    assert (a.token, a.password, b.url) == (b.token, b.password, "http://127.0.0.1:8123")
    assert len(a.token) > 5 and server.status()["running"] is False
    # a stale pid file naming some other program: stop must not touch it
    server.pid_path.write_text(f"{os.getpid()}\n")
    assert server.stop() is False and not server.pid_path.exists()


def test_unreachable_server_says_how_to_start(tmp_path):
    from pipelines.review.server import free_port

    ws = make_ws(tmp_path / "ws", n=2)
    client = LabelStudioClient(f"http://127.0.0.1:{free_port()}", "whatever-token", retries=1,
                               backoff=0.01, start_hint="curate labelstudio start --workspace W")
    with pytest.raises(ReviewSyncError, match="not running at .*curate labelstudio start"):
        push(ws, "claim", client=client)


# -- against the real server ---------------------------------------------------------------------
def _client(server, **kw) -> LabelStudioClient:
    return LabelStudioClient(server.url, server.token, **kw)


def _server_task_count(client, project_id) -> int:
    return client.get_project(project_id)["task_number"]


@pytest.mark.labelstudio
@pytest.mark.slow
def test_push_repush_annotate_pull_repull(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=6)
    client = _client(labelstudio_server)
    first = push(ws, "claim", client=client, budget=4)
    assert (first.created, first.skipped, first.project_created) == (4, 0, True)
    again = push(ws, "claim", client=client, budget=4)
    assert (again.created, again.skipped) == (2, 4)  # only the two never sent
    assert push(ws, "claim", client=client).created == 0
    assert _server_task_count(client, first.project_id) == 6
    project = client.get_project(first.project_id)
    assert project["sampling"] == "Uncertainty sampling"
    assert "TextArea" in project["label_config"]

    rows = rows_by_record(ws)
    by_conf = sorted(rows.values(), key=lambda r: r["confidence"])
    # the least confident record's task carries its weak label as a prediction
    task = client.sdk.tasks.get(id=by_conf[0]["task_id"])
    assert task.data["ext_id"] == by_conf[0]["record_id"]
    t_all = list(client.sdk.tasks.list(project=first.project_id, fields="all"))
    preds = {t.id: t.predictions for t in t_all}
    assert preds[by_conf[0]["task_id"]], "prediction missing on the pushed task"

    r0, r1, r2, r3 = by_conf[:4]
    client.annotate(r0["task_id"], choice_result("fire", "instruction", "a corrected summary"))
    client.annotate(r1["task_id"], choice_result("theft", "instruction"))  # not in the scheme
    client.annotate(r2["task_id"], [], was_cancelled=True)
    a3 = client.annotate(r3["task_id"], choice_result("auto", "instruction"))
    res = pull(ws, "claim", client=client)
    assert (res.new, res.updated) == (4, 0)
    assert len(res.problems) == 1 and "theft" in res.problems[0]
    rows = rows_by_record(ws)
    assert rows[r0["record_id"]]["human_label"] == "fire"
    assert rows[r0["record_id"]]["edited_response"] == "a corrected summary"
    assert rows[r0["record_id"]]["reviewer"] == labelstudio_server.username
    assert rows[r1["record_id"]]["human_label"] is None
    assert rows[r2["record_id"]]["status"] == "skipped"

    with ws.connect() as conn:
        before = [dict(r) for r in conn.execute("SELECT * FROM review ORDER BY record_id")]
    repull = pull(ws, "claim", client=client)
    assert (repull.new, repull.updated, repull.removed) == (0, 0, 0)
    with ws.connect() as conn:
        assert [dict(r) for r in conn.execute("SELECT * FROM review ORDER BY record_id")] == before

    # an updated annotation replaces the older one
    client.sdk.annotations.update(id=a3, result=choice_result("water", "instruction"))
    upd = pull(ws, "claim", client=client)
    assert (upd.new, upd.updated) == (0, 1)
    assert rows_by_record(ws)[r3["record_id"]]["human_label"] == "water"

    st = review_status(ws, "claim")
    assert (st["pushed"], st["annotated"], st["skipped"], st["pending"]) == (6, 2, 1, 3)
    assert st["url"].endswith(f"/projects/{first.project_id}")


@pytest.mark.labelstudio
@pytest.mark.slow
def test_two_annotators_agreement(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=4, kind="text")
    client = _client(labelstudio_server)
    push(ws, "claim", client=client)
    other = client.sdk.users.create(username=f"rev-{tmp_path.name}"[:30],
                                    email=f"{tmp_path.name[:20]}@example.com",
                                    password="reviewer-pass-1")
    tasks = sorted(r["task_id"] for r in rows_by_record(ws).values())
    plan = [("auto", "auto"), ("fire", "water"), ("water", "water"), ("fire", "fire")]
    for tid, (x, y) in zip(tasks, plan):
        client.annotate(tid, choice_result(x, "text"))
        client.sdk.annotations.create(id=tid, result=choice_result(y, "text"),
                                      completed_by=other.id)
    res = pull(ws, "claim", client=client)
    assert res.new == 8
    assert res.agreement["items"] == 4 and res.agreement["agreed"] == 3
    assert res.agreement["percent_agreement"] == pytest.approx(0.75)
    # pe: A = auto1 fire2 water1, B = auto1 water2 fire1 -> (1+2+2)/16
    assert res.agreement["cohen_kappa"] == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16), abs=1e-4)
    assert review_status(ws, "claim")["agreed"] == 3


@pytest.mark.labelstudio
@pytest.mark.slow
def test_chat_push_annotate_pull(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=2, kind="chat")
    client = _client(labelstudio_server)
    push(ws, "claim", client=client)
    rows = rows_by_record(ws)
    project = client.sdk.tasks.get(id=next(iter(rows.values()))["task_id"])
    assert [m["role"] for m in project.data["dialogue"]] == ["user", "assistant"] * 2
    for r in rows.values():
        client.annotate(r["task_id"], choice_result("fire", "chat"))
    res = pull(ws, "claim", client=client)
    assert res.new == 2
    assert {r["human_label"] for r in rows_by_record(ws).values()} == {"fire"}


class _DiesAfterImport:
    """A client whose import reaches the server, then the connection dies (as in a kill)."""

    def __init__(self, client, fail_on_call: int):
        self._c, self._n, self._fail = client, 0, fail_on_call

    def __getattr__(self, name):
        return getattr(self._c, name)

    def import_tasks(self, project_id, tasks):
        self._n += 1
        ids = self._c.import_tasks(project_id, tasks)
        if self._n == self._fail:
            raise ReviewSyncError("lost Label Studio during a task import (simulated)")
        return ids


@pytest.mark.labelstudio
@pytest.mark.slow
def test_push_interrupted_after_import_then_rerun_has_no_duplicates(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=7, kind="text")
    client = _client(labelstudio_server)
    cfg = ReviewConfig(batch_size=3)
    with pytest.raises(ReviewSyncError, match="simulated"):
        push(ws, "claim", client=_DiesAfterImport(client, fail_on_call=2), cfg=cfg)
    st = review_status(ws, "claim")
    assert (st["pushed"], st["in_flight"]) == (3, 3)
    res = push(ws, "claim", client=client, cfg=cfg)
    assert (res.recovered, res.created) == (3, 1)
    assert _server_task_count(client, res.project_id) == 7
    ext_ids = [t.data["ext_id"] for t in client.sdk.tasks.list(project=res.project_id)]
    assert len(ext_ids) == len(set(ext_ids)) == 7


@pytest.mark.labelstudio
@pytest.mark.slow
def test_deleted_project_and_deleted_task(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=3, kind="text")
    client = _client(labelstudio_server)
    first = push(ws, "claim", client=client)
    rows = sorted(rows_by_record(ws).values(), key=lambda r: r["task_id"])
    client.annotate(rows[0]["task_id"], choice_result("fire", "text"))
    client.sdk.tasks.delete(id=str(rows[1]["task_id"]))
    res = pull(ws, "claim", client=client)
    assert (res.new, res.deleted_tasks) == (1, 1)
    assert rows[1]["record_id"] not in rows_by_record(ws)  # pending again: re-pushable
    client.sdk.projects.delete(id=first.project_id)
    with pytest.raises(ReviewSyncError, match="--recreate"):
        push(ws, "claim", client=client)
    with pytest.raises(ReviewSyncError, match="no longer exists"):
        pull(ws, "claim", client=client)
    again = push(ws, "claim", client=client, recreate=True)
    assert again.project_created and again.project_id != first.project_id
    assert again.created == 2  # the reviewed record is not sent again
    kept = rows_by_record(ws)[rows[0]["record_id"]]
    assert (kept["status"], kept["human_label"]) == ("reviewed", "fire")


@pytest.mark.labelstudio
@pytest.mark.slow
def test_cli_json_keys_and_wrong_token(labelstudio_server, tmp_path, capsys, monkeypatch):
    from curate.cli import main

    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    ws = make_ws(tmp_path / "ws", n=3)
    WorkspaceServer.of(ws).save(labelstudio_server)  # point the workspace at the test server
    w = str(ws.path)

    def run(*args) -> dict:
        assert main([*args, "--workspace", w, "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert {"running", "url"} <= run("labelstudio", "status").keys()
    out = run("review", "push", "--scheme", "claim", "--budget", "2")
    assert (out["created"], out["skipped"]) == (2, 0)
    client = _client(labelstudio_server)
    client.annotate(rows_by_record(ws)[next(iter(rows_by_record(ws)))]["task_id"],
                    choice_result("water", "instruction"))
    out = run("review", "pull", "--scheme", "claim")
    assert (out["new"], out["updated"]) == (1, 0)
    out = run("review", "status", "--scheme", "claim")
    assert (out["pushed"], out["annotated"], out["pending"]) == (2, 1, 1) and out["url"]
    assert main(["labelstudio", "token", "--workspace", w]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == labelstudio_server.token

    monkeypatch.setenv("CURATE_LABELSTUDIO_TOKEN", "not-the-token")
    assert main(["review", "push", "--scheme", "claim", "--workspace", w]) == 2
    assert "rejected the API token" in capsys.readouterr().err


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"


@pytest.mark.browser
@pytest.mark.labelstudio
@pytest.mark.slow
def test_browser_review_in_label_studio_then_pull(labelstudio_server, tmp_path, capsys,
                                                  monkeypatch):
    """Log in to the real UI, see the weak label pre-filled, choose another label, correct the
    response, submit; `curate review pull` stores the human label and the edited response."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing (make chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from curate.cli import main

    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    ws = make_ws(tmp_path / "ws", n=2, confidences=[0.4, 0.8])  # labels: auto, water
    WorkspaceServer.of(ws).save(labelstudio_server)
    res = push(ws, "claim")
    target = min(rows_by_record(ws).values(), key=lambda r: r["confidence"])
    assert target["weak_label"] == "auto"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = labelstudio_server.url
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})
        try:
            page = ctx.new_page()
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", labelstudio_server.username)
            page.fill("input[name=password]", labelstudio_server.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.goto(f"{url}/projects/{res.project_id}/data?task={target['task_id']}")
            page.wait_for_selector(".lsf-choice__checkbox", timeout=90_000)
            page.screenshot(path=str(ARTIFACTS / "1-task-with-prediction.png"))
            boxes = page.locator(".lsf-choice__checkbox")
            checked = [boxes.nth(i).inner_text().split("[")[0].strip()
                       for i in range(boxes.count()) if boxes.nth(i).locator("input").is_checked()]
            assert checked == ["auto"], f"weak label not pre-filled: {checked}"
            page.locator(".lsf-choice__checkbox", has_text="fire").click()
            page.fill("textarea", "Kitchen fire; claimant asks for 4,200 EUR.")
            page.screenshot(path=str(ARTIFACTS / "2-chosen.png"))
            with page.expect_response(lambda r: "/annotations" in r.url
                                      and r.request.method == "POST", timeout=60_000) as resp:
                page.locator('[data-testid="bottombar-submit-button"]').click()
            assert resp.value.ok
            page.screenshot(path=str(ARTIFACTS / "3-submitted.png"))
        finally:
            ctx.close()
    assert main(["review", "pull", "--scheme", "claim", "--workspace", str(ws.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["new"] == 1
    row = rows_by_record(ws)[target["record_id"]]
    assert (row["status"], row["human_label"]) == ("reviewed", "fire")
    assert row["edited_response"] == "Kitchen fire; claimant asks for 4,200 EUR."
    assert row["reviewer"] == labelstudio_server.username


@pytest.mark.labelstudio
@pytest.mark.slow
def test_workspace_server_start_stop_and_pull_resumes_after_restart(labelstudio_server, request,
                                                                     tmp_path, capsys,
                                                                     monkeypatch):
    """A workspace's own server: started, reused, stopped (exactly its pid); while it is down
    push and pull fail clearly and store nothing; after a restart the pull picks up the work."""
    from curate.cli import main
    from pipelines.review.server import LS_VERSION, free_port, pid_alive

    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    ws = make_ws(tmp_path / "ws", n=3, kind="text")
    server = WorkspaceServer.of(ws)
    # same credentials as the cached template database (the session server's)
    server.save(labelstudio_server)
    template = request.config.cache.mkdir(f"labelstudio-db-{LS_VERSION}")
    port = free_port()
    info, started = server.start(port=port, template=template)
    try:
        assert started and pid_alive(info.pid) and server.pid() == info.pid
        assert server.start(port=port)[1] is False  # already running: reused
        w = str(ws.path)
        assert main(["labelstudio", "status", "--workspace", w, "--json"]) == 0
        st = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert st["running"] and st["url"] == f"http://127.0.0.1:{port}"
        res = push(ws, "claim")
        assert res.created == 3
        client = connect(ws)
        tid = min(r["task_id"] for r in rows_by_record(ws).values())
        client.annotate(tid, choice_result("fire", "text"))

        assert main(["labelstudio", "stop", "--workspace", w]) == 0
        assert not pid_alive(info.pid)
        capsys.readouterr()
        assert main(["review", "pull", "--scheme", "claim", "--workspace", w]) == 2
        assert "not running" in capsys.readouterr().err
        assert review_status(ws, "claim")["annotated"] == 0  # nothing half-stored

        info, started = server.start(port=port)
        assert started
        assert pull(ws, "claim").new == 1
        assert review_status(ws, "claim")["annotated"] == 1
    finally:
        server.stop()
    assert not pid_alive(info.pid)


def test_concurrent_sync_of_one_scheme_is_refused(tmp_path):
    from pipelines.review.sync import _scheme_lock

    ws = make_ws(tmp_path / "ws", n=1)
    with _scheme_lock(ws, "claim"):
        with pytest.raises(ReviewSyncError, match="another review push or pull"):
            push(ws, "claim", client=object())
        with _scheme_lock(ws, "other"):
            pass  # other schemes are independent


@pytest.mark.labelstudio
@pytest.mark.slow
def test_changed_classes_update_the_labeling_interface(labelstudio_server, tmp_path):
    ws = make_ws(tmp_path / "ws", n=2, kind="text")
    client = _client(labelstudio_server)
    first = push(ws, "claim", client=client)
    ws.config_path.write_text(ws.config_path.read_text().replace('"fire"]', '"fire", "theft"]'))
    push(ws, "claim", client=client)
    assert '"theft"' in client.get_project(first.project_id)["label_config"]


class _BatchServer(_FakeClient):
    """A fake server that remembers tasks by push batch (as `tasks_of_batch` asks)."""

    def tasks_of_batch(self, project_id, batch_id):
        return {t["data"]["ext_id"]: i for i, t in enumerate(self.imported)
                if t["data"]["push_batch"] == batch_id}


def test_rerun_after_a_crash_the_server_committed_stays_within_the_budget(tmp_path):
    ws = make_ws(tmp_path / "ws", n=10, kind="text")
    server = _BatchServer()
    cfg = ReviewConfig(batch_size=3)
    with pytest.raises(ReviewSyncError, match="simulated"):
        push(ws, "claim", client=_DiesAfterImport(server, fail_on_call=2), cfg=cfg, budget=6)
    assert len(server.imported) == 6 and review_status(ws, "claim")["in_flight"] == 3
    res = push(ws, "claim", client=server, cfg=cfg, budget=6)   # the same command, rerun
    assert (res.recovered, res.created) == (3, 0)
    assert len(server.imported) == 6                            # not 6 + 6
    more = push(ws, "claim", client=server, cfg=cfg, budget=2)   # a new push: its own budget
    assert (more.recovered, more.created) == (0, 2)
    ext = [t["data"]["ext_id"] for t in server.imported]
    assert len(ext) == len(set(ext)) == 8


@pytest.mark.labelstudio
@pytest.mark.slow
def test_label_studio_files_are_private_to_the_user(labelstudio_server):
    """Its sqlite holds the admin's API token: nothing there readable by group or others."""
    root = Path(labelstudio_server.data_dir).parent
    paths = [p for top in (Path(labelstudio_server.data_dir), root / "xdg-config")
             for p in [top, *top.rglob("*")]] + [Path(labelstudio_server.log_path)]
    assert any(p.name == "label_studio.sqlite3" for p in paths)
    shared = [f"{p} {stat.S_IMODE(p.stat().st_mode):o}" for p in paths
              if not p.is_symlink() and p.stat().st_mode & 0o077]
    assert shared == []


def test_labelstudio_start_interrupted_while_waiting_stops_the_server(tmp_path, monkeypatch,
                                                                     capsys):
    """Ctrl-C while `curate labelstudio start` waits for /health: the (detached) server child is
    stopped, the exit status is 130 and the message says what was kept. A shell script stands in
    for label-studio: it records its pid and sleeps."""
    import os
    import socket
    import time as _time

    from curate.cli import main
    from pipelines.launch import pid_alive
    from pipelines.review import server as server_mod

    pid_file = tmp_path / "fake.pid"
    exe = tmp_path / "label-studio"
    exe.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n", encoding="utf-8")
    exe.chmod(0o755)
    monkeypatch.setenv("CURATE_LABELSTUDIO_BIN", str(exe))
    calls = []

    def fake_health(url, timeout=2.0):
        calls.append(url)
        if len(calls) < 3:          # WorkspaceServer.start and start_server's port check
            return False
        deadline = _time.monotonic() + 10
        while not pid_file.exists() and _time.monotonic() < deadline:
            _time.sleep(0.05)
        raise KeyboardInterrupt     # the user presses Ctrl-C while it waits

    monkeypatch.setattr(server_mod, "health", fake_health)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = make_ws(tmp_path / "ws", n=1)
    rc = main(["labelstudio", "start", "--workspace", str(ws.path), "--port", str(port)])
    err = capsys.readouterr().err
    assert rc == 130 and "was stopped" in err and "is kept" in err
    pid = int(pid_file.read_text())
    deadline = _time.monotonic() + 10
    while pid_alive(pid) and _time.monotonic() < deadline:
        _time.sleep(0.05)
    assert not pid_alive(pid)
    assert not server_mod.WorkspaceServer.of(ws).pid_path.exists()
    assert os.environ.get("CURATE_LABELSTUDIO_BIN") == str(exe)
