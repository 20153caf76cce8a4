"""The Overview page: stage counts and ingest by upload."""

from pipelines.store import stage_counts


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_overview_shows_stage_counts(studio_ws, page):
    with studio_ws.connect() as conn:
        records = stage_counts(conn)["records"]
    at = page("overview")
    assert records > 1000
    assert _metric(at, "Ingested") == f"{records:,}"
    assert _metric(at, "Excluded") == "0"
    assert any("Dedup" in i.value for i in at.info)  # next step after ingest


def test_upload_ingests_and_reports(studio_ws, page):
    at = page("overview")
    before = _metric(at, "Ingested")
    at.file_uploader[0].set_value([("extra.jsonl", b'{"note": "a brand new claim note", "summary": "new"}\n'
                                                  b'{"note": "another new note", "summary": "s"}\n',
                                    "application/json")])
    at.button[0].click().run()
    assert not at.exception
    assert any("2 added" in s.value for s in at.success), [e.value for e in at.error]
    after = _metric(at, "Ingested")
    assert int(after.replace(",", "")) == int(before.replace(",", "")) + 2
    with studio_ws.connect() as conn:
        src = conn.execute("SELECT file FROM record_sources ORDER BY rowid DESC LIMIT 1").fetchone()
    assert src[0] == str(studio_ws.path / "uploads" / "extra.jsonl")


def test_upload_of_a_bad_file_shows_the_error_and_stores_nothing(studio_ws, page):
    at = page("overview")
    before = _metric(at, "Ingested")
    at.file_uploader[0].set_value(("bad.jsonl", b'{"note": "fine", "summary": "ok"}\n{"note": "", "summary": "x"}\n',
                                   "application/json"))
    at.button[0].click().run()
    assert not at.exception
    assert at.error and "bad.jsonl" in at.error[0].value and "row 2" in at.error[0].value
    assert _metric(at, "Ingested") == before
    assert not (studio_ws.path / "uploads" / "bad.jsonl").exists()


def test_upload_of_a_windows_csv_with_its_encoding(studio_ws, page):
    at = page("overview")
    data = 'note,summary\n"Café roof, 5€ deductible",roof\n'.encode("cp1252")
    at.file_uploader[0].set_value(("excel.csv", data, "text/csv"))
    at.button[0].click().run()
    assert at.error and "invalid UTF-8" in at.error[0].value and "cp1252" in at.error[0].value
    enc = next(s for s in at.selectbox if s.label == "Text encoding")
    enc.set_value("cp1252")
    at.button[0].click().run()
    assert any("1 added" in s.value for s in at.success), [e.value for e in at.error]
    with studio_ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records WHERE text LIKE 'Café roof, 5€%'"
                            ).fetchone()[0] == 1


def test_upload_of_a_preference_file_reports_its_pairs(studio_ws, page):
    at = page("overview")
    at.file_uploader[0].set_value([("prefs.jsonl", b'{"note": "a pipe burst", "chosen": "water '
                                    b'claim", "rejected": "fire claim"}\n', "application/json")])
    at.button[0].click().run()
    assert not at.exception
    assert any("2 added" in s.value and "1 new preference pairs" in s.value for s in at.success), \
        [e.value for e in at.error]
