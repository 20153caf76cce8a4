"""Every page renders on its own under AppTest, on an empty workspace and on a broken config."""

import pytest

PAGES = ["overview", "data", "dedup", "filters", "label", "review", "synthetic", "export_train",
         "models"]


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_on_an_empty_workspace(name, fresh_ws, page, monkeypatch):
    monkeypatch.setenv("CURATE_WORKSPACE", str(fresh_ws.path))
    at = page(name)   # asserts no exception
    assert at.title and not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", PAGES)
def test_a_broken_curation_yaml_is_an_error_message(name, fresh_ws, page, monkeypatch):
    fresh_ws.config_path.write_text("schemes: [oops\n")
    monkeypatch.setenv("CURATE_WORKSPACE", str(fresh_ws.path))
    from streamlit.testing.v1 import AppTest

    from tests.studio.conftest import PAGES as FOLDER

    at = AppTest.from_file(str(FOLDER / f"{name}.py"), default_timeout=60).run()
    if name == "overview":  # needs no config: it still renders and offers the upload
        assert not at.exception and at.file_uploader
    elif name == "models":  # reads the registry, not the config
        assert not at.exception and at.info
    else:
        assert not at.exception, [e.value for e in at.exception]
        assert at.error and "invalid YAML" in at.error[0].value


@pytest.mark.parametrize("name,hint", [("label", "add one under `schemes:`"),
                                       ("review", "add one under `schemes:`"),
                                       ("synthetic", "add one to label sources for counterfactuals"),
                                       ("export_train", "add one to export labelled data")])
def test_pages_that_need_schemes_say_so(name, hint, fresh_ws, page, monkeypatch):
    monkeypatch.setenv("CURATE_WORKSPACE", str(fresh_ws.path))
    at = page(name)
    assert at.warning and "declares no label schemes" in at.warning[0].value
    assert hint in at.warning[0].value
