"""The Label page: LF analysis after a run, and the browser LF editor (sandboxed try, errors
with their line, save into W/lfs and re-label)."""

import pytest

pytestmark = pytest.mark.slow  # labeling runs in a child process (snorkel import)


def test_run_labeling_shows_the_analysis(studio_ws, page):
    at = page("label")
    assert any("No labeling run" in i.value for i in at.info)
    at.button(key="label_run").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    assert any("Labelled" in s.value for s in at.success), [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Records"] == f"{2730:,}" or int(metrics["Records"].replace(",", "")) > 0
    lf_table = next(d.value for d in at.dataframe if "coverage" in d.value.columns
                    and "emp. accuracy" in d.value.columns)
    assert len(lf_table) >= 3 and lf_table["coverage"].between(0, 1).all()
    models = next(d.value for d in at.dataframe if "model" in d.value.columns)
    assert "majority" in set(models["model"])
    with studio_ws.connect() as conn:
        n = conn.execute("SELECT COUNT(*) FROM labels WHERE scheme = 'claim_type'").fetchone()[0]
    assert n > 0


def test_editor_try_error_save_and_relabel(tiny_ws, page):
    at = page("label")
    template = at.text_area[0].value
    assert "@labeling_function()" in template and "SCHEME = 'claim_type'" in template

    broken = template.replace('return AUTO_COLLISION if "some phrase" in text else ABSTAIN',
                                  "return undefined_name")
    at.text_area[0].input(broken).run()
    at.button(key="lf_try").click().run(timeout=120)
    assert not at.exception
    # Every record faults on NameError, each reported with its editor line.
    line = broken.splitlines().index("    return undefined_name") + 1
    assert any(f"line {line}: NameError" in w.value for w in at.warning), \
        [w.value for w in at.warning]

    syntax = template + "\ndef lf_bad(x)\n    return 0\n"
    at.text_area[0].input(syntax).run()
    at.button(key="lf_try").click().run(timeout=120)
    bad_line = len(template.splitlines()) + 2
    assert at.error and at.error[0].value.startswith(f"Line {bad_line}: SyntaxError")
    at.button(key="lf_save").click().run(timeout=120)
    assert not (tiny_ws.path / "lfs" / "my_lfs.py").exists()  # an error is never saved

    good = template.replace('"some phrase"', '"burst"')
    at.text_area[0].input(good).run()
    at.button(key="lf_try").click().run(timeout=120)
    summary = next(d.value for d in at.dataframe if "lf" in d.value.columns
                   and "property_water" in d.value.columns)
    assert summary["lf"].tolist() == ["lf_my_rule"]
    assert 0 < summary["coverage"][0] < 1 and summary["auto_collision"][0] > 0

    at.button(key="lf_save").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    assert (tiny_ws.path / "lfs" / "my_lfs.py").read_text().strip() == good.strip()
    assert any("Re-labelled" in s.value for s in at.success), [e.value for e in at.error]
    with tiny_ws.connect() as conn:
        params = conn.execute("SELECT params FROM runs WHERE step = 'label' ORDER BY id DESC"
                              " LIMIT 1").fetchone()[0]
    assert "lf_my_rule" in params
    # The analysis tab of the same run already shows the new LF.
    lf_table = next(d.value for d in at.dataframe if "emp. accuracy" in d.value.columns)
    assert "lf_my_rule" in set(lf_table["lf"])
