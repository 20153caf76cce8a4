"""`curate generate`: prompt files parse (or fail on one line), a run's base vs tuned come back."""

from __future__ import annotations

import json

import pytest

from curate.cli import main as curate
from curate.cli.generate import read_prompts
from pipelines.errors import InputError


def test_read_prompts_text_and_jsonl(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first note\n\nsecond note\n", encoding="utf-8")
    assert read_prompts(txt, "Summarise.") == [
        [{"role": "system", "content": "Summarise."}, {"role": "user", "content": "first note"}],
        [{"role": "system", "content": "Summarise."}, {"role": "user", "content": "second note"}]]
    jl = tmp_path / "p.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}]},
        {"prompt": "b"}, {"instruction": "c", "input": "d"}]), encoding="utf-8")
    got = read_prompts(jl)
    assert [p[-1]["content"] for p in got] == ["a", "b", "c\n\nd"]
    assert all(m["role"] != "assistant" for p in got for m in p)


@pytest.mark.parametrize("body, msg", [("", "no prompts"), ('{"text": 1}\n', r"p\.jsonl:1: expected"),
                                       ('{"prompt": "a"}\nnot json\n', r"p\.jsonl:2: not JSON")])
def test_read_prompts_faults_name_the_line(tmp_path, body, msg):
    f = tmp_path / "p.jsonl"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=msg):
        read_prompts(f)


def test_unknown_run_is_one_line(tmp_path, capsys):
    from pipelines.store import Workspace

    Workspace.create(tmp_path / "ws")
    (tmp_path / "p.txt").write_text("a note\n", encoding="utf-8")
    rc = curate(["generate", "--workspace", str(tmp_path / "ws"), "--run", "nope",
                 str(tmp_path / "p.txt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "nope" in err and "Traceback" not in err


@pytest.mark.slow
def test_generate_after_a_tiny_sft_run(tmp_path, capsys):
    from pipelines.export import export_dataset
    from tests.trainer.conftest import make_toy_ws, toy_rows
    from trainer import TrainConfig, train
    from trainer.tiny import build_tiny_llama

    ws = make_toy_ws(tmp_path / "ws")
    texts = [t for _, _, note, summary in toy_rows(48) for t in (note, summary)] * 3
    model = str(build_tiny_llama(tmp_path / "tiny", texts, vocab_size=400))
    exp = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.25)
    cfg = TrainConfig(base_model=model, batch_size=4, max_seq_length=64, learning_rate=2e-2,
                      max_steps=8, generations=1, max_new_tokens=6, save_steps=100)
    run = train(ws, exp.version, cfg, progress=False, echo=lambda m: None)
    (tmp_path / "p.txt").write_text("claim 3: a pipe burst\nclaim 4: lightning fire\n",
                                    encoding="utf-8")
    out = tmp_path / "gen.jsonl"
    rc = curate(["generate", "--workspace", str(ws.path), "--run", run["run_id"],
                 str(tmp_path / "p.txt"), "--out", str(out), "--max-new-tokens", "6", "--json"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary["n"] == 2 and [r["prompt"] for r in rows] == ["claim 3: a pipe burst",
                                                                  "claim 4: lightning fire"]
    assert any(r["base"] != r["tuned"] for r in rows)   # the adapter changes what it says
