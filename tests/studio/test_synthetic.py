"""The Synthetic page: make private copies and counterfactuals, browse them beside their source,
and the export cap's preview."""

from tests.studio.conftest import add_fake_labels


def test_make_private_copies_then_browse_side_by_side(studio_ws, page):
    at = page("synthetic")
    assert [m.value for m in at.metric][1:] == ["0", "0", "0"]
    assert any("No synthetic record yet" in i.value for i in at.info)
    at.number_input(key="syn_pr_n").set_value(3).run()
    at.button(key="syn_pr_preview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Would store 3 private copies" in s.value for s in at.success)
    assert any("<mark>" in m.value for m in at.markdown)             # the replaced values marked
    assert {m.label: m.value for m in at.metric}["Private"] == "0"   # a preview stores nothing
    at.button(key="syn_pr_make").click().run()
    assert any("Stored 3 new of 3 private copies" in s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["Private"] == "3"
    rows = at.dataframe[-1].value
    assert len(rows) == 3 and set(rows["method"]) == {"private"}
    assert rows["change"].str.startswith("replaced ").all()
    pick = at.selectbox(key="syn_pick")
    assert pick.value in set(rows["id"])
    marked = [m.value for m in at.markdown if "<del>" in m.value or "<mark>" in m.value]
    assert len(marked) >= 2                                           # source | copy, marked


def test_counterfactuals_and_the_export_cap(studio_ws, page):
    add_fake_labels(studio_ws, "summary_quality")
    at = page("synthetic")
    at.selectbox(key="syn_cf_scheme").set_value("summary_quality").run()
    at.number_input(key="syn_cf_n").set_value(6).run()
    at.button(key="syn_cf_make").click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert any("caught counterfactuals" in s.value and "Stored" in s.value for s in at.success)
    made = int({m.label: m.value for m in at.metric}["Counterfactual"])
    assert made >= 1
    add_fake_labels(studio_ws, "summary_quality")    # the new records labelled, as `curate label`
    at.selectbox(key="syn_ex_scheme").set_value("summary_quality").run()
    at.segmented_control(key="syn_ex_mode").set_value("exclude").run()
    assert any("(**0** synthetic)" in m.value for m in at.markdown)
    assert any(f"synthetic {made}" in c.value for c in at.caption)
    at.segmented_control(key="syn_ex_mode").set_value("include").run()
    assert any(f"(**{made}** synthetic)" in m.value for m in at.markdown)
