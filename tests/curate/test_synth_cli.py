"""`curate synth counterfactuals` and `curate export --format preference` on an inline workspace."""

from __future__ import annotations

import json

from curate.cli import main
from tests.pipelines.test_synth import make_ws


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_counterfactuals_preview_then_store_then_export_pairs(capsys, tmp_path):
    ws = str(make_ws(tmp_path).path)
    code, out, _ = run(capsys, "synth", "counterfactuals", "-w", ws, "--scheme",
                       "summary_quality", "--n", "4", "--preview", "--json")
    s = last_json(out)
    assert code == 0 and s["preview"] and s["created"] == 4 and s["stored"] == 0
    assert "would store 4 caught counterfactual(s)" in out
    code, out, _ = run(capsys, "synth", "counterfactuals", "-w", ws, "-s", "summary_quality",
                       "--n", "4", "--edits", "amount,place", "--json")
    s = last_json(out)
    assert code == 0 and s["stored"] == 4 and set(s["by_edit"]) == {"amount", "place"}
    code, out, _ = run(capsys, "export", "-w", ws, "--scheme", "summary_quality", "--format",
                       "preference", "--eval-fraction", "0", "--json")
    s = last_json(out)
    assert code == 0 and s["train"] == 4 and s["synthetic"] == {"train": 4, "eval": 0}
    assert "synthetic: train 4, eval 0" in out


def test_bad_synth_options_are_one_line(capsys, tmp_path):
    ws = str(make_ws(tmp_path).path)
    code, _, err = run(capsys, "synth", "counterfactuals", "-w", ws, "--edits", "tone")
    assert code == 2 and err.startswith("error: synth.edits") and err.count("\n") == 1
    code, _, err = run(capsys, "synth", "generate", "-w", ws, "--model", "m", "--endpoint",
                       "http://127.0.0.1:9/v1", "--max-retries", "0", "--timeout", "0.5")
    last = err.strip().splitlines()[-1]              # (tqdm's bar is on stderr above it)
    assert code == 2 and last.startswith("error: endpoint") and "unreachable" in last
    assert "Traceback" not in err


def test_synth_private_preview_then_store(capsys, tmp_path):
    from tests.pipelines.test_synth_private import make_ws as make_private_ws

    ws = str(make_private_ws(tmp_path).path)
    code, out, _ = run(capsys, "synth", "private", "-w", ws, "--seed", "5", "--preview")
    assert code == 0 and "would store 2 private cop(ies); 1 had nothing to replace" in out
    assert "'Maria Lopez' -> " in out and "PERSON" in out
    code, out, _ = run(capsys, "synth", "private", "-w", ws, "--seed", "5", "--json")
    s = last_json(out)
    assert code == 0 and s["stored"] == 2 and s["unchanged"] == 1 and s["replaced"]["ident"] >= 2
    assert "examples" not in s and "Maria" not in out.splitlines()[-1]
    code, _, err = run(capsys, "synth", "private", "-w", ws, "--scope", "world")
    assert code == 2 and err.startswith("error: synth.scope") and err.count("\n") == 1
