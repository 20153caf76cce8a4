"""Fixtures for the studio tests: the sample workspace as $CURATE_WORKSPACE, pages under AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parents[2] / "studio" / "app_pages"


@pytest.fixture
def studio_ws(sample_ws, monkeypatch):
    """A private copy of the ingested sample, set as $CURATE_WORKSPACE for the pages."""
    monkeypatch.setenv("CURATE_WORKSPACE", str(sample_ws.path))
    return sample_ws


@pytest.fixture
def page():
    """`page("overview")` -> an AppTest of that page file, run once, with no exception."""
    from streamlit.testing.v1 import AppTest

    def _run(name: str, timeout: float = 60) -> "AppTest":
        at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _run


def add_fake_labels(ws, scheme: str = "claim_type", confidence: float = 0.95) -> int:
    """Label every record with its raw (legacy) label, as if a labeling run had: lets the export
    and train pages work without running the weak-supervision step."""
    from pipelines.config import load_config
    from pipelines.store import finish_run, iter_records, start_run
    from pipelines.store.labels import LabelRow, replace_labels

    classes = set(load_config(ws.config_path).scheme(scheme).classes)
    with ws.transaction() as conn:
        rows = [LabelRow(r.id, r.raw_label if scheme == "claim_type" else "ACCEPT",
                         confidence, "label_model")
                for r in iter_records(conn)
                if scheme != "claim_type" or r.raw_label in classes]
        run_id = start_run(conn, "label", {"fake": True}, scheme=scheme)
        replace_labels(conn, scheme, rows, run_id)
        finish_run(conn, run_id, {"labelled": len(rows)})
    return len(rows)


@pytest.fixture
def labelled_ws(studio_ws):
    add_fake_labels(studio_ws, "claim_type")
    add_fake_labels(studio_ws, "summary_quality")
    return studio_ws


TINY_NOTES = [
    ("On 3/4/2026 Ana Ruiz of Austin, TX reported a burst pipe flooding the kitchen; claimed $2,400.",
     "Water damage, $2,400: burst pipe in the kitchen."),
    ("On 3/4/2026 Ana Ruiz of Austin TX reported a burst pipe flooding the kitchen. Claimed $2,400.",
     "Water damage, $2,400: burst pipe in the kitchen."),
    ("On 3/4/2026, Ana Ruiz (Austin, TX) reported a burst pipe that flooded her kitchen; claim $2,400.",
     "Burst pipe, $2,400, kitchen flooded."),
    ("On 3/4/2026 Ana Ruiz of Austin, TX reported a burst pipe flooding the kitchen; claimed $9,100.",
     "Water damage, $9,100: burst pipe in the kitchen."),
    ("Bob Lee's 2019 Honda was rear-ended on I-35 on 5/6/2026; bumper and trunk damage, $3,150.",
     "Auto collision, $3,150: rear-end on I-35."),
    ("A kitchen fire on 1/2/2026 charred the cabinets at the home of Cy Park, Reno, NV; $12,000.",
     "Fire, $12,000: kitchen cabinets charred."),
    ("Thieves broke into Di Moss's garage in Boise, ID on 7/8/2026 and took two bikes; $1,800.",
     "Theft, $1,800: two bikes taken from the garage."),
    ("Ed Fox slipped on ice at the insured's store on 2/2/2026 and fractured a wrist; $5,500.",
     "Injury, $5,500: fractured wrist after a fall on ice."),
]


@pytest.fixture(scope="session")
def _tiny_template(tmp_path_factory):
    import json
    import shutil

    from pipelines.config import load_config
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.samples import sample_dir
    from pipelines.store import Workspace

    root = tmp_path_factory.mktemp("studio-tiny")
    ws = Workspace.create(root / "ws")
    shutil.copyfile(sample_dir() / "curation.yaml", ws.config_path)
    data = root / "tiny.jsonl"
    data.write_text("".join(json.dumps({"note": n, "summary": s, "claim_type": "theft"}) + "\n"
                            for n, s in TINY_NOTES), encoding="utf-8")
    ingest(ws, [data], IngestConfig.from_curation(load_config(ws.config_path)))
    return ws.path


@pytest.fixture
def tiny_ws(_tiny_template, tmp_path, monkeypatch):
    """Eight claim notes (three near-copies, one with a conflicting amount) as $CURATE_WORKSPACE."""
    import shutil

    from pipelines.store import Workspace

    dst = tmp_path / "tiny_ws"
    shutil.copytree(_tiny_template, dst)
    monkeypatch.setenv("CURATE_WORKSPACE", str(dst))
    return Workspace.open(dst)
