"""The Data page: filters, search and pagination answer from SQL."""


def test_data_page_lists_a_page_and_opens_a_record(studio_ws, page):
    at = page("data")
    df = at.dataframe[0].value
    assert len(df) == 50
    assert at.selectbox(key="data_record").value == df["id"][0]
    assert any("Prompt" in m.value for m in at.markdown)


def test_text_search_filters_rows(studio_ws, page):
    at = page("data")
    at.text_input(key="data_query").input("water").run()
    df = at.dataframe[0].value
    assert 0 < len(df) <= 50
    assert all("water" in t.lower() for t in df["text"])


def test_pagination_moves_the_window(studio_ws, page):
    at = page("data")
    first = list(at.dataframe[0].value["id"])
    at.number_input(key="data_page").set_value(2).run()
    second = list(at.dataframe[0].value["id"])
    assert len(second) == 50 and not set(first) & set(second)


def test_no_match_says_so(studio_ws, page):
    at = page("data")
    at.text_input(key="data_query").input("zzqx-no-such-text").run()
    assert not at.dataframe
    assert any("No records match" in c.value for c in at.caption)
