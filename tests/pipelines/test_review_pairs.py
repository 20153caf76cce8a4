"""Pairwise review and review-made preference pairs: pure mappings and store logic without a
server, then the real Label Studio (the session fixture `labelstudio_server`)."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from pipelines.errors import ConfigError
from pipelines.export import export_dataset, load_manifest, read_split
from pipelines.export.preference import pick_of
from pipelines.review._client import (
    LabelStudioClient,
    annotation_to_choice,
    choice_result,
    pair_to_task,
    pairwise_label_config,
    pairwise_result,
)
from pipelines.review.pairs import find_pairs, pair_status, pull_pairs, push_pairs
from pipelines.review.sync import pull, push
from pipelines.store import NewRecord, Record, Workspace, upsert_record, utcnow
from pipelines.store.pairs import (
    PairJudgment,
    add_pairs,
    known_pairs,
    resolve_pair_batch,
    store_pair_judgments,
)
from pipelines.store.review import review_rows, seed_labels

CURATION = "schema: instruction\nschemes:\n  quality:\n    classes: [ACCEPT, REJECT]\n"


def _rid(*parts: str) -> str:
    return "r" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def make_pair_ws(path) -> tuple[Workspace, dict[str, str]]:
    """Three prompts answered twice each (real data), one record with a generated second
    response, and one counterfactual; returns the workspace and {name: record id}."""
    ws = Workspace.create(path)
    ws.config_path.write_text(CURATION, encoding="utf-8")
    spec = [  # name, prompt, response, synthetic lineage (source name, method, task)
        ("a1", "Summarise claim A", "Pipe burst on May 2; $900 claimed.", None),
        ("a2", "Summarise claim A", "A pipe burst.", None),
        ("b1", "Summarise claim B", "Hail dented the car roof; $1,200 claimed.", None),
        ("b2", "Summarise claim B", "Car damage from hail on June 5, $1,200.", None),
        ("c1", "Summarise claim C", "Kitchen fire on July 9; $15,000 claimed.", None),
        ("c2", "Summarise claim C", "Fire. Claimant: John Roe.", None),
        ("d1", "Summarise claim D", "Theft of a bicycle; $400 claimed.", None),
        ("d2", "Summarise claim D", "A bicycle worth $400 was stolen.", ("d1", "generate",
                                                                         "second_response")),
        ("d3", "Summarise claim D", "Theft of a bicycle; $4,000 claimed.", ("d1",
                                                                            "counterfactual", None)),
    ]
    ids: dict[str, str] = {}
    with ws.transaction() as conn:
        for i, (name, prompt, response, syn) in enumerate(spec):
            rid = _rid(str(path), name)
            ids[name] = rid
            meta = {}
            if syn:
                meta["synthetic"] = {"method": syn[1], "source_id": ids[syn[0]]}
                if syn[2]:
                    meta["synthetic"]["task"] = syn[2]
                else:
                    meta["synthetic"].update(edit="amount", caught_by=["lf_amount"])
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{prompt}\n\n{response}",
                                          prompt=prompt, response=response, meta=meta,
                                          file="inline", row=i + 1), utcnow())
        seed_labels(conn, "quality", [(ids[n], "ACCEPT", 0.9) for n in ("a1", "b1", "c1", "d1")])
    return ws, ids


# -- pure ----------------------------------------------------------------------------------------
def _rec(rid, prompt, response, syn=None) -> Record:
    return Record.from_row({"id": rid, "kind": "instruction", "text": "", "prompt": prompt,
                            "response": response, "meta": json.dumps(
                                {"synthetic": syn} if syn else {})})


def test_find_pairs_origins_known_and_shuffled_sides():
    recs = [_rec("s", "P", "good"), _rec("x", "P", "other answer"),
            _rec("cf", "P", "bad", {"method": "counterfactual", "source_id": "s"}),
            _rec("g", "P", "gen", {"method": "generate", "task": "second_response",
                                   "source_id": "s"}),
            _rec("elsewhere", "Q", "gen", {"method": "generate", "task": "second_response",
                                           "source_id": "s"}),   # another prompt: no pair
            _rec("lone", "R", "alone")]
    pairs = find_pairs(recs)
    assert [(p.source_id, p.other_id, p.origin) for p in pairs] == [
        ("s", "x", "same_prompt"), ("s", "cf", "counterfactual"), ("s", "g", "second_response")]
    for p in pairs:
        assert {p.left_id, p.right_id} == {p.source_id, p.other_id}
        assert p.picked("left") == p.left_id and p.picked("right") == p.right_id
    assert [p.origin for p in find_pairs(recs, origins=["second_response"])] == ["second_response"]
    assert [p.other_id for p in find_pairs(recs, known=["s~x", "s~cf"])] == ["g"]
    with pytest.raises(ConfigError, match="pair origin must be one of"):
        find_pairs(recs, origins=["typo"])
    # the sides depend on the pair id only, and both sides occur over many pairs
    many = find_pairs([_rec("s", "P", "a")] + [_rec(f"o{i}", "P", f"b{i}") for i in range(40)])
    assert 5 < sum(p.swapped for p in many) < 35


def test_pairwise_label_config_and_task_and_annotations():
    root = ET.fromstring(pairwise_label_config())
    pw = root.find(".//Pairwise")
    assert pw is not None and pw.get("toName") == "answer1,answer2"
    names = {t.get("name") for t in root.iter("Text")}
    assert names == {"prompt", "answer1", "answer2"}
    task = pair_to_task("a~b", "Q?", "left text", "right text", batch_id="B1", system="Be brief.")
    assert task["data"] == {"ext_id": "a~b", "push_batch": "B1", "prompt": "Be brief.\n\nQ?",
                            "answer1": "left text", "answer2": "right text"}
    left = annotation_to_choice({"id": 1, "result": pairwise_result("left"), "completed_by": 3,
                                 "created_at": "2026-01-02T03:04:05Z"})
    assert (left.choice, left.skipped, left.problem, left.annotator_id) == ("left", False, None, 3)
    assert left.created_at == "2026-01-02T03:04:05.000000Z"
    skip = annotation_to_choice({"id": 2, "result": [], "was_cancelled": True})
    assert (skip.choice, skip.skipped, skip.problem) == (None, True, None)
    empty = annotation_to_choice({"id": 3, "result": []})
    assert empty.choice is None and "without choosing" in empty.problem
    bad = annotation_to_choice({"id": 4, "result": [{"type": "pairwise",
                                                     "value": {"selected": "middle"}}]})
    assert bad.choice is None and "'middle'" in bad.problem


def _j(aid, who, picked, skipped=False) -> PairJudgment:
    return PairJudgment(aid, 1, "p", who, "left" if picked else None, picked, skipped, None,
                        None, f"2026-01-01T00:00:0{aid}Z")


def test_pick_of_majority_latest_vote_per_annotator_and_ties():
    assert pick_of([_j(1, "A", "x"), _j(2, "B", "x"), _j(3, "C", "y")]) == "x"
    assert pick_of([_j(1, "A", "x"), _j(2, "B", "y")]) is None            # 1-1: no pair
    assert pick_of([_j(1, "A", "x"), _j(2, "B", "y"), _j(3, "A", "y")]) == "y"  # A changed
    assert pick_of([_j(1, "A", "x"), _j(2, "B", None, skipped=True)]) == "x"
    assert pick_of([_j(1, None, "x"), _j(2, None, "x"), _j(3, "A", "y")]) == "x"
    assert pick_of([]) is None


def _judge(ws, pairs, plan, project_id=1):
    """Store judgments {pair_id: [(annotator, side), ...]} as a pull would."""
    with ws.transaction() as conn:
        add_pairs(conn, pairs, project_id, "B", utcnow())
        resolve_pair_batch(conn, "B", {p.pair_id: 100 + i for i, p in enumerate(pairs)})
        per_task, aid = {}, 0
        for i, p in enumerate(pairs):
            per_task[100 + i] = []
            for who, side in plan.get(p.pair_id, []):
                aid += 1
                per_task[100 + i].append(PairJudgment(
                    aid, 100 + i, p.pair_id, who, side, p.picked(side) if side else None,
                    side is None, None, utcnow(), f"2026-01-01T00:00:{aid:02d}.000000Z"))
        return store_pair_judgments(conn, project_id, per_task, utcnow())


def test_judged_pairs_become_preference_rows_ties_skipped_counterfactual_replaced(tmp_path):
    ws, ids = make_pair_ws(tmp_path / "ws")
    with ws.connect() as conn:
        from pipelines.store.pairs import pairable_records
        pairs = {(p.source_id, p.other_id): p for p in find_pairs(pairable_records(conn))}
    a, b, c = pairs[ids["a1"], ids["a2"]], pairs[ids["b1"], ids["b2"]], pairs[ids["c1"], ids["c2"]]
    cf = pairs[ids["d1"], ids["d3"]]
    side = lambda p, name: "left" if p.left_id == ids[name] else "right"  # noqa: E731
    counts = _judge(ws, [a, b, c, cf], {
        a.pair_id: [("ann", side(a, "a1")), ("bob", side(a, "a1"))],
        b.pair_id: [("ann", side(b, "b2")), ("bob", side(b, "b2"))],
        c.pair_id: [("ann", side(c, "c1")), ("bob", side(c, "c2"))],   # a tie: no pair
        cf.pair_id: [("ann", side(cf, "d3")), ("bob", None)],          # a person prefers it
    })
    assert counts == {"new": 8, "updated": 0, "removed": 0, "unchanged": 0}
    res = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    assert res.labels["train"] == {"pairwise": 3}
    assert res.skipped["pairwise: judges tied"] == 1
    assert res.skipped["pair: judged in pairwise review"] == 1
    got = {r["chosen"]: r["rejected"] for r in read_split(ws, res.version, "train")}
    assert got == {"Pipe burst on May 2; $900 claimed.": "A pipe burst.",
                   "Car damage from hail on June 5, $1,200.":
                       "Hail dented the car roof; $1,200 claimed.",
                   "Theft of a bicycle; $4,000 claimed.": "Theft of a bicycle; $400 claimed."}
    assert load_manifest(ws, res.version)["counts"]["synthetic"] == {"train": 1, "eval": 0}
    st = pair_status(ws)
    assert (st["pushed"], st["judged"], st["judgments"], st["no_choice"]) == (4, 4, 7, 1)
    assert (st["decided"], st["tied"]) == (3, 1)
    assert st["agreement"]["items"] == 3 and st["agreement"]["agreed"] == 2


def test_an_interrupted_pair_push_is_reconciled_by_batch(tmp_path):
    """A batch journalled but never resolved (killed around the import): resolving it with
    what the server holds keeps those pairs and drops the rest, so they are found again."""
    ws, ids = make_pair_ws(tmp_path / "ws")
    from pipelines.store.pairs import pairable_records, pending_pair_batches

    with ws.connect() as conn:
        todo = find_pairs(pairable_records(conn))
    with ws.transaction() as conn:
        add_pairs(conn, todo[:3], 7, "dead", utcnow())
    with ws.connect() as conn:
        assert pending_pair_batches(conn) == {"dead": 7}
    with ws.transaction() as conn:    # the server got the first two
        assert resolve_pair_batch(conn, "dead", {todo[0].pair_id: 11, todo[1].pair_id: 12}) == 2
    with ws.connect() as conn:
        assert pending_pair_batches(conn) == {}
        known = known_pairs(conn)
        again = find_pairs(pairable_records(conn), known=known)
    assert set(known) == {todo[0].pair_id, todo[1].pair_id}
    assert [p.pair_id for p in again] == [p.pair_id for p in todo[2:]]


# -- against the real server ---------------------------------------------------------------------
def _client(server) -> LabelStudioClient:
    return LabelStudioClient(server.url, server.token)


def _second_user(client, tag: str):
    return client.sdk.users.create(username=f"pw-{tag}"[:30], email=f"pw-{tag[:20]}@example.com",
                                   password="reviewer-pass-1")


@pytest.mark.labelstudio
@pytest.mark.slow
def test_pairwise_push_two_annotators_pull_agreement_and_export(labelstudio_server, tmp_path,
                                                                capsys, monkeypatch):
    from sklearn.metrics import cohen_kappa_score

    from curate.cli import main
    from pipelines.review.server import WorkspaceServer

    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    ws, ids = make_pair_ws(tmp_path / "ws")
    WorkspaceServer.of(ws).save(labelstudio_server)   # the CLI finds the test server

    def cli(*args) -> dict:
        assert main(["review", "pairs", *args, "--workspace", str(ws.path), "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    client = _client(labelstudio_server)
    first = cli("push", "--origin", "same_prompt", "--origin", "second_response")
    assert (first["created"], first["project_created"]) == (4, True)
    assert first["by_origin"] == {"same_prompt": 3, "second_response": 1}
    assert push_pairs(ws, client=client, origins=["same_prompt", "second_response"]).created == 0
    project = client.get_project(first["project_id"])
    assert project["task_number"] == 4 and "<Pairwise" in project["label_config"]

    with ws.connect() as conn:
        pairs = {(p.source_id, p.other_id): p for p in known_pairs(conn).values()}
        tasks = {r["pair_id"]: r["task_id"] for r in conn.execute("SELECT * FROM pairs")}
    a, b, c, d = (pairs[ids[x], ids[y]] for x, y in
                  (("a1", "a2"), ("b1", "b2"), ("c1", "c2"), ("d1", "d2")))
    # the server shows each pair's sides as stored: answer1 = left
    shown = client.sdk.tasks.get(id=tasks[a.pair_id]).data
    by_id = {ids[k]: k for k in ids}
    assert shown["ext_id"] == a.pair_id and shown["prompt"] == "Summarise claim A"
    assert shown["answer1"].startswith({"a1": "Pipe", "a2": "A pipe"}[by_id[a.left_id]])

    other = _second_user(client, tmp_path.name)
    side = lambda p, name: "left" if p.left_id == ids[name] else "right"  # noqa: E731
    plan = {a: (side(a, "a1"), side(a, "a1")), b: (side(b, "b2"), side(b, "b2")),
            c: (side(c, "c1"), side(c, "c2")), d: (side(d, "d2"), None)}
    for p, (mine, theirs) in plan.items():
        client.annotate(tasks[p.pair_id], pairwise_result(mine))
        if theirs is None:
            client.sdk.annotations.create(id=tasks[p.pair_id], result=[], was_cancelled=True,
                                          completed_by=other.id)
        else:
            client.sdk.annotations.create(id=tasks[p.pair_id], result=pairwise_result(theirs),
                                          completed_by=other.id)
    pulled = cli("pull")
    assert (pulled["new"], pulled["updated"], pulled["no_choice"]) == (8, 0, 1)
    with ws.connect() as conn:
        stored = [dict(r) for r in conn.execute("SELECT * FROM pair_judgments")]
    assert {s["annotator"] for s in stored} == {labelstudio_server.username, other.email}
    assert all(s["created_at"] and s["updated_at"] for s in stored)
    picked = {(s["pair_id"], s["annotator"]): s["picked_id"] for s in stored if s["choice"]}
    assert picked[a.pair_id, other.email] == ids["a1"]
    assert picked[b.pair_id, labelstudio_server.username] == ids["b2"]
    assert picked[c.pair_id, other.email] == ids["c2"]
    skipped = [s for s in stored if s["pair_id"] == d.pair_id and s["annotator"] == other.email]
    assert skipped[0]["skipped"] == 1 and skipped[0]["choice"] is None

    agr = pulled["agreement"]
    assert (agr["items"], agr["agreed"]) == (3, 2)
    assert agr["majority_share"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    mine = [plan[p][0] for p in (a, b, c)]
    theirs = [plan[p][1] for p in (a, b, c)]
    assert agr["cohen_kappa"] == pytest.approx(cohen_kappa_score(mine, theirs), abs=1e-4)
    assert agr["fleiss_kappa"] is not None

    again = pull_pairs(ws, client=client)
    assert (again.new, again.updated, again.removed) == (0, 0, 0)
    st = cli("status")
    assert (st["pushed"], st["judged"], st["decided"], st["tied"]) == (4, 4, 3, 1)
    assert st["url"].endswith(f"/projects/{first['project_id']}")

    exp = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    assert exp.labels["train"] == {"counterfactual": 1, "pairwise": 3}   # d1 > d3 not pushed
    assert exp.skipped["pairwise: judges tied"] == 1
    rows = {r["chosen"]: r["rejected"] for r in read_split(ws, exp.version, "train")}
    assert rows["Pipe burst on May 2; $900 claimed."] == "A pipe burst."
    assert rows["Car damage from hail on June 5, $1,200."].startswith("Hail dented")
    assert rows["A bicycle worth $400 was stolen."] == "Theft of a bicycle; $400 claimed."
    manifest = load_manifest(ws, exp.version)
    assert manifest["counts"]["labels"]["train"]["pairwise"] == 3


@pytest.mark.labelstudio
@pytest.mark.slow
def test_correction_pulled_from_label_studio_becomes_a_preference_pair(labelstudio_server,
                                                                       tmp_path):
    ws, ids = make_pair_ws(tmp_path / "ws")
    client = _client(labelstudio_server)
    push(ws, "quality", client=client, budget=2)
    with ws.connect() as conn:
        sent = [r for r in review_rows(conn, "quality") if r["task_id"]]
    target, untouched = sent
    with ws.connect() as conn:
        original = conn.execute("SELECT response FROM records WHERE id = ?",
                                (target["record_id"],)).fetchone()[0]
    client.annotate(target["task_id"], choice_result(
        "ACCEPT", "instruction", "Corrected: a faithful summary with the claimed amount."))
    client.annotate(untouched["task_id"], choice_result("ACCEPT", "instruction"))
    assert pull(ws, "quality", client=client).new == 2
    exp = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard",
                         synthetic="exclude")
    assert exp.labels["train"] == {"correction": 1}
    (row,) = read_split(ws, exp.version, "train")
    assert row["chosen"] == "Corrected: a faithful summary with the claimed amount."
    assert row["rejected"] == original


@pytest.mark.browser
@pytest.mark.labelstudio
@pytest.mark.slow
def test_browser_pairwise_pick_then_pull(labelstudio_server, tmp_path):
    """In the real UI a reviewer clicks the right-hand response and submits; the pull stores
    'right' and the record shown there (this checks the Pairwise tag's real result format)."""
    import os
    from pathlib import Path

    from tests.pipelines.test_review import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing (make chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ws, ids = make_pair_ws(tmp_path / "ws")
    client = _client(labelstudio_server)
    res = push_pairs(ws, client=client, origins=["same_prompt"], budget=1)
    with ws.connect() as conn:
        (pair,) = known_pairs(conn).values()
        task_id = conn.execute("SELECT task_id FROM pairs").fetchone()[0]
        right_text = conn.execute("SELECT response FROM records WHERE id = ?",
                                  (pair.right_id,)).fetchone()[0]
    out = Path(ARTIFACTS).parent / "review-pairs"   # screenshots and the annotation sent
    out.mkdir(parents=True, exist_ok=True)
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
            page.goto(f"{url}/projects/{res.project_id}/data?task={task_id}")
            submit = page.locator('[data-testid="bottombar-submit-button"]')
            submit.wait_for(timeout=90_000)
            page.screenshot(path=str(out / "1-pair.png"))
            page.get_by_text(right_text, exact=True).last.click()
            page.screenshot(path=str(out / "2-picked.png"))
            with page.expect_response(lambda r: "/annotations" in r.url
                                      and r.request.method == "POST", timeout=60_000) as resp:
                submit.click()
            assert resp.value.ok
            sent = resp.value.request.post_data_json
            (out / "annotation.json").write_text(json.dumps(sent, indent=1), encoding="utf-8")
        finally:
            ctx.close()
    pulled = pull_pairs(ws, client=client)
    assert pulled.new == 1, pulled.problems
    with ws.connect() as conn:
        row = dict(conn.execute("SELECT * FROM pair_judgments").fetchone())
    assert (row["choice"], row["picked_id"]) == ("right", pair.right_id), sent
    assert row["annotator"] == labelstudio_server.username
