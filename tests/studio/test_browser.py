"""End to end in a real browser: the studio as `curate studio` starts it, driven by Debian's
chromium through playwright. Ingest a slice of the sample by upload, run dedup and open a
cluster, write and save an LF in the editor and see its coverage, export and train the tiny
classifier to completion and see its loss curve and evaluation table.

Screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SLICE_ROWS = 400  # a slice keeps the CPU-only embedding and training inside the test budget


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture
def studio_server(tmp_path):
    """An empty workspace with the sample's curation.yaml (plus a short training section), the
    studio started on a free 127.0.0.1 port exactly as `curate studio` does."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing (make chromium)")
    pytest.importorskip("playwright.sync_api")
    from curate.cli.studio import studio_command
    from pipelines.samples import sample_dir
    from pipelines.store import Workspace

    ws = Workspace.create(tmp_path / "ws")
    cfg = yaml.safe_load((sample_dir() / "curation.yaml").read_text())
    # Chat export -> the SFT head on the workspace's tiny local Llama; a short run.
    cfg["export"] = {**cfg.get("export", {}), "format": "chat"}
    cfg["train"] = {"max_steps": 4, "batch_size": 4, "eval_max_examples": 16,
                    "max_seq_length": 256, "save_steps": 100, "generations": 2}
    ws.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # A slice of the sample's CSV under its own name, as a user would upload it.
    upload = tmp_path / "claims.csv"
    with open(sample_dir() / "claims.csv", newline="", encoding="utf-8") as src, \
            open(upload, "w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        for i, row in enumerate(reader):
            if i > SLICE_ROWS:
                break
            writer.writerow(row)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CURATE_WORKSPACE": str(ws.path), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(studio_command(port), env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_http(url, proc)
        yield {"url": url, "ws": ws, "upload": upload, "log": tmp_path / "streamlit.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for rd in (ws.path / "runs").glob("*"):  # a training run still going: stop it too
            pid_file = rd / "pid"
            if pid_file.exists() and pid_file.read_text().strip().isdigit():
                try:
                    os.kill(int(pid_file.read_text().strip()), 15)
                except OSError:
                    pass


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # A fresh profile folder per test: no state leaks between runs.
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            viewport={"width": 1400, "height": 2400},  # tall: the whole page in a shot
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            yield ctx
        finally:
            ctx.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(5, 5)  # no tooltip over the picture
    page.wait_for_timeout(1000)  # tables draw on a canvas a moment after they arrive
    page.screenshot(path=str(ARTIFACTS / f"studio-{name}.png"), full_page=True)


def _idle(page, timeout: float = 120_000) -> None:
    """Wait until the script run finished (Streamlit's 'running' indicator is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def _click_until(page, button: str, shown: str, *, failed: str, tries: int = 3,
                 each_ms: float = 90_000) -> None:
    """Click `button` until text matching `shown` appears. A click that lands while the page is
    still rerunning (a slow machine) can be dropped by Streamlit, so a click that shows nothing
    within `each_ms` is repeated; text matching `failed` (the page's own error) fails at once."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    outcome = page.get_by_text(re.compile(f"{shown}|{failed}")).first
    for attempt in range(1, tries + 1):
        page.get_by_role("button", name=button).click()
        try:
            outcome.wait_for(timeout=each_ms)
        except PlaywrightTimeout:
            print(f"  {button!r}: nothing shown after {each_ms / 1000:.0f} s (click {attempt})")
            continue
        text = outcome.inner_text()
        assert re.search(shown, text), f"{button!r} showed an error: {text}"
        return
    raise AssertionError(f"{button!r} showed nothing matching {shown!r} after {tries} clicks")


def _open(page, studio, path: str) -> None:
    page.goto(f"{studio['url']}/{path}")
    _idle(page)


def test_the_whole_loop_in_a_browser(studio_server, browser):
    page = browser.new_page()
    page.set_default_timeout(120_000)
    try:
        _the_whole_loop(page, studio_server)
    except Exception:
        _shot(page, "failure")  # what the browser showed when it went wrong
        print(studio_server["log"].read_text()[-3000:])
        try:  # CI keeps no screenshots: the page's text says what it showed
            print("page text at the failure:\n" + page.inner_text("body")[-4000:])
        except Exception as exc:  # noqa: BLE001 - the page itself may be gone
            print(f"(no page text: {exc})")
        raise


def _the_whole_loop(page, studio) -> None:
    from playwright.sync_api import expect

    t0 = time.time()
    last = [t0]

    def lap(what: str) -> None:
        now = time.time()
        print(f"  {what}: {now - last[0]:.0f} s")
        last[0] = now

    # Overview: upload the file. The sample has deliberately broken rows: the first try is
    # refused with the file, row and field named; with "skip invalid rows" the rest goes in.
    _open(page, studio, "")
    page.get_by_text("Next:").wait_for()
    page.locator('input[type="file"]').set_input_files(str(studio["upload"]))
    page.locator('[data-testid="stFileChip"]').first.wait_for()
    page.get_by_role("button", name="Ingest", exact=True).click()
    page.get_by_text(re.compile(r"claims\.csv, row \d+ \(line \d+\), field")).wait_for()
    _idle(page)
    _shot(page, "0-overview-bad-row")
    page.get_by_text("Skip invalid rows").click()
    page.get_by_role("button", name="Ingest", exact=True).click()
    page.get_by_text(re.compile(r"\d+ added")).wait_for()
    _idle(page)
    _shot(page, "1-overview")
    lap("ingest")
    with studio["ws"].connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] > 300

    # Dedup: preview, commit, open the largest cluster and keep a dropped member.
    _open(page, studio, "dedup")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Would exclude").wait_for(timeout=300_000)
    page.get_by_role("button", name="Commit").click()
    page.get_by_text(re.compile(r"Stored \d+ clusters")).wait_for(timeout=300_000)
    _idle(page)
    page.get_by_text("(representative)").first.wait_for()
    _shot(page, "2-dedup-cluster")
    lap("dedup")

    # Label: write an LF in the editor, run it on the sample, save it and re-label.
    _open(page, studio, "label")
    page.get_by_role("tab", name="LF editor").click()
    editor = page.get_by_label("Source")
    # the template's text arrives after the text area does: reading it at once can give "",
    # which then ran as an empty module ("no labeling function found", seen on a loaded box)
    expect(editor).to_have_value(re.compile('"some phrase"'), timeout=60_000)
    source = editor.input_value().replace('"some phrase"', '"burst"')
    assert '"burst"' in source
    editor.fill(source)
    editor.press("Control+Enter")  # commit the text area's value
    _idle(page)
    _click_until(page, "Run on sample", r"On \d+ records",
                 failed=r"\(time limit\)|before reporting|no labeling function found")
    _idle(page)
    _shot(page, "3-lf-editor-coverage")
    page.get_by_role("button", name="Save and re-label").click()
    page.get_by_text("Re-labelled").wait_for(timeout=300_000)
    _idle(page)
    assert (studio["ws"].path / "lfs" / "my_lfs.py").read_text().strip() == source.strip()
    page.get_by_role("tab", name="LF analysis").click()
    page.get_by_text("Label model vs majority vote").wait_for()  # the run just made
    page.get_by_text("lf_my_rule").first.wait_for()
    _shot(page, "4-lf-analysis")
    lap("label")

    # Export & Train: one click, then the live curve and the evaluation table.
    _open(page, studio, "export_train")
    page.get_by_text("Train examples").wait_for()
    page.get_by_role("button", name="Export and train").click()
    page.get_by_text(re.compile(r"Training run .* started")).wait_for()
    page.get_by_text("Evaluation: base vs tuned").wait_for(timeout=420_000)
    _idle(page)
    page.get_by_text(re.compile(r"done: step \d+ of \d+")).wait_for()
    page.wait_for_timeout(1500)  # the run's end triggers one full rerun: let it finish
    _idle(page)
    _shot(page, "5-export-train")
    lap("export and train")
    assert page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]'
                        ).count() >= 1
    print(f"browser flow: {time.time() - t0:.0f} s")
