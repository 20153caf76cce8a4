"""The Export & Train page: preview counts, export, manifest and downloads."""

from pipelines.export import list_exports


def test_preview_then_export_writes_a_version(labelled_ws, page):
    at = page("export_train")
    at.selectbox(key="exp_scheme").set_value("claim_type").run()
    metrics = {m.label: m.value for m in at.metric}
    train = int(metrics["Train examples"].replace(",", ""))
    assert train > 0  # the sample's gold labels alone make an export possible
    at.button(key="btn_export").click().run()
    assert not at.exception
    assert any("Exported **v0001**" in s.value for s in at.success), [e.value for e in at.error]
    versions = list_exports(labelled_ws)
    assert [v["version"] for v in versions] == ["v0001"]
    assert versions[0]["train"] == train
    assert at.selectbox(key="exp_version").value == "v0001"


def test_export_error_is_shown_and_nothing_is_written(studio_ws, page):
    at = page("export_train")  # no labels yet: gold records go to eval, train would be empty
    at.button(key="btn_export").click().run()
    assert not at.exception
    assert at.error and "empty train split" in at.error[0].value
    assert list_exports(studio_ws) == []
    assert not any(p.name.startswith(".tmp") for p in (studio_ws.path / "exports").iterdir())
