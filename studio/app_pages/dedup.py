"""Dedup: preview a threshold's effect before committing, then browse clusters and keep/drop."""

from collections import Counter

import altair as alt
import streamlit as st

from studio import _data

st.title("Dedup")

counts = _data.counts()


def progress_bar():
    """One bar for a run: its stages in turn (name, count, ETA), fed by run_dedup's callback."""
    bar = st.progress(0.0, text="Starting...")
    return lambda p: bar.progress(p.overall, text=p.describe())


def size_chart(sizes: list[int], height: int) -> None:
    """How many clusters have 2, 3, ... members."""
    hist = [{"size": k, "clusters": v} for k, v in sorted(Counter(sizes).items())]
    st.altair_chart(alt.Chart(alt.Data(values=hist)).mark_bar().encode(
        x=alt.X("size:O", title="cluster size", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("clusters:Q", title="clusters"), tooltip=["size:O", "clusters:Q"]),
        height=height)


defaults = None
with _data.show_errors():
    defaults = _data.dedup_defaults()
if defaults is None:  # curation.yaml's dedup: section is invalid; the error says how
    st.stop()

# -- settings and preview ---------------------------------------------------------------------
st.subheader("1. Find duplicates")
with st.container(border=True):
    c1, c2, c3 = st.columns([2, 1, 1])
    threshold = c1.slider("Similarity threshold (cosine)", 0.70, 1.00, float(defaults.threshold),
                          0.01, key="dedup_threshold",
                          help="At or above it, two records merge on meaning alone (unless their "
                               "facts conflict). Below it, down to the candidate floor, they "
                               "merge only on shared facts or near-identical wording.")
    verify = c2.toggle("Check facts", value=defaults.verify, key="dedup_verify",
                       help="Refuse merges whose amounts, dates or ids conflict.")
    same_prompt = c3.toggle("Same prompt = duplicate", value=defaults.same_prompt,
                            key="dedup_same_prompt",
                            help="One prompt with several responses forms a cluster.")
    with st.expander("Stages and evidence rules"):
        s1, s2, s3, s4 = st.columns(4)
        exact = s1.toggle("Exact", value=defaults.exact, key="dedup_exact",
                          help="Stage 1: same text ignoring case, spacing and punctuation.")
        fuzzy = s2.toggle("Fuzzy (MinHash-LSH)", value=defaults.fuzzy, key="dedup_fuzzy",
                          help="Stage 2: lexical near copies of the whole text.")
        semantic = s3.toggle("Semantic (embeddings)", value=defaults.semantic,
                             key="dedup_semantic", help="Stage 3: paraphrases via FAISS.")
        same_conversation = s4.toggle(
            "Compare segments of one conversation", value=defaults.same_conversation,
            key="dedup_same_conversation",
            help="Off: segments of one source conversation are never duplicates.")
        r1, r2, r3 = st.columns(3)
        lexical_threshold = r1.slider(
            "Lexical threshold (5-gram Jaccard)", 0.50, 1.00, float(defaults.lexical_threshold),
            0.01, key="dedup_lexical_threshold",
            help="At or above it, a pair is a copy (no fact conflict).")
        paraphrase_threshold = r2.slider(
            "Paraphrase threshold (cosine)", 0.50, 1.00, float(defaults.paraphrase_threshold),
            0.01, key="dedup_paraphrase_threshold",
            help="With a shared identifier and enough shared facts, a paraphrase merges here.")
        min_shared_facts = r3.number_input(
            "Shared facts for a paraphrase", 1, 20, int(defaults.min_shared_facts),
            key="dedup_min_shared_facts")
        embedding_max_chars = st.number_input(
            "Longest text a cosine can merge (characters)", 100, 1_000_000,
            int(defaults.embedding_max_chars), step=500, key="dedup_embedding_max_chars",
            help="Longer texts merge on lexical evidence only: a long text's vector says what "
                 "it is about, not what it says.")
        q1, q2, q3 = st.columns(3)
        near_copy_threshold = q1.slider(
            "Near-copy threshold (5-gram Jaccard)", 0.30, 1.00,
            float(defaults.near_copy_threshold), 0.01, key="dedup_near_copy_threshold",
            help="With cosine at the paraphrase threshold and agreeing facts, a pair this alike "
                 "in wording is a (typo'd, reordered) copy.")
        fuzzy_threshold = q2.slider(
            "Fuzzy candidate threshold (MinHash)", 0.30, 1.00, float(defaults.fuzzy_threshold),
            0.01, key="dedup_fuzzy_threshold",
            help="MinHash-LSH Jaccard at which the fuzzy stage proposes a pair.")
        candidate_threshold = q3.slider(
            "Candidate floor (cosine)", 0.30, 1.00, float(defaults.candidate_threshold), 0.01,
            key="dedup_candidate_threshold",
            help="The nearest neighbours below it are not compared (capped at the threshold).")
    with st.expander("Search, model and engine"):
        e1, e2, e3, e4 = st.columns(4)
        kinds = _data.dedup_index_kinds()
        index = e1.selectbox("Index", kinds, index=kinds.index(defaults.index),
                             key="dedup_index",
                             help="auto: exact flat index up to the flat limit, HNSW above.")
        neighbours = e2.number_input("Neighbours per record", 1, 256, int(defaults.neighbours),
                                     key="dedup_neighbours")
        flat_max = e3.number_input("Flat index up to (vectors)", 1, 100_000_000,
                                   int(defaults.flat_max), step=10_000, key="dedup_flat_max")
        batch_size = e4.number_input("Encode batch", 1, 4096, int(defaults.batch_size),
                                     key="dedup_batch_size")
        f1, f2 = st.columns([1, 3])
        fact_blocking = f1.toggle(
            "Fact blocking", value=defaults.fact_blocking, key="dedup_fact_blocking",
            help="Also compare records sharing an identifier or an amount on a date.")
        block_max = f2.number_input(
            "Skip a shared fact held by more records than", 1, 100_000, int(defaults.block_max),
            key="dedup_block_max")
        model = st.text_input("Embedding model", value=defaults.model, key="dedup_model",
                              help="auto (static model on CPU, MiniLM on GPU), static, default "
                                   "(MiniLM), or a model folder.")
        scheduler = st.text_input(
            "Dask scheduler", value=defaults.scheduler or "", key="dedup_scheduler",
            placeholder="tcp://host:8786 (empty: no Dask)",
            help="Its workers compute the embeddings and MinHash signatures; the results are "
                 "the same as a local run.")
params = {**defaults.params(), "threshold": threshold, "verify": verify,
          "same_prompt": same_prompt, "exact": exact, "fuzzy": fuzzy, "semantic": semantic,
          "same_conversation": same_conversation, "lexical_threshold": lexical_threshold,
          "paraphrase_threshold": paraphrase_threshold,
          "min_shared_facts": int(min_shared_facts),
          "embedding_max_chars": int(embedding_max_chars), "near_copy_threshold": near_copy_threshold,
          "fuzzy_threshold": fuzzy_threshold, "candidate_threshold": min(candidate_threshold,
                                                                         threshold),
          "index": index, "neighbours": int(neighbours), "flat_max": int(flat_max),
          "batch_size": int(batch_size), "fact_blocking": fact_blocking,
          "block_max": int(block_max), "model": model.strip() or "auto",
          "scheduler": scheduler.strip() or None}

if params.get("semantic", True):
    note = _data.language_note(params["model"])
    if note:
        st.warning(note, icon=":material/translate:")

b1, b2, _ = st.columns([1, 1, 3])
if b1.button("Preview", key="dedup_preview", help="Nothing is stored."):
    st.session_state["dedup_previewed"] = params
if b2.button("Commit", key="dedup_commit", type="primary",
             help="Store the clusters and exclusions (reversible: keep/drop below)."):
    with _data.show_errors():
        done = _data.dedup_commit(params, on_progress=progress_bar())
        st.session_state.pop("dedup_previewed", None)  # stored now: the counts below say it
        counts = _data.counts()
        st.success(f"Stored {done['clusters']:,} clusters; {done['excluded']:,} records excluded "
                   f"({done['exact']:,} exact, of which {done['same_prompt']:,} same prompt; "
                   f"{done['semantic']:,} semantic; {done['overrides']:,} overrides respected).")

if st.session_state.get("dedup_previewed") == params:
    with _data.show_errors():
        preview = _data.dedup_preview(params, on_progress=progress_bar())
        s = preview["summary"]
        st.markdown(f"**Preview at {threshold:.2f}** (nothing stored yet)")
        m = st.columns(5)
        m[0].metric("Clusters", f"{s['clusters']:,}")
        m[1].metric("Would exclude", f"{s['excluded']:,}",
                    delta=f"{s['excluded'] - counts['excluded']:+,} vs now", delta_color="off")
        m[2].metric("Exact", f"{s['exact']:,}",
                    help=f"Includes {s['same_prompt']:,} with the same prompt and a duplicate "
                         "response.")
        m[3].metric("Semantic", f"{s['semantic']:,}")
        m[4].metric("Refused (contradiction)", f"{s['conflicts']:,}",
                    help="Candidate pairs whose facts (amounts, dates, places, ids...) differ, "
                         "or whose long shared text ends differently: kept apart. "
                         f"{s['conflicts_above_threshold']:,} of them cosine alone would merge.")
        if preview["sizes"]:
            size_chart(preview["sizes"], 200)
elif st.session_state.get("dedup_previewed"):
    st.caption("Settings changed: press **Preview** to see their effect.")

# -- stored clusters --------------------------------------------------------------------------
st.subheader("2. Clusters")
sizes = _data.cluster_sizes()
if not sizes:
    st.caption("No clusters stored yet: preview, then commit a dedup run.")
    st.stop()

left, right = st.columns([1, 2])
with left:
    st.metric("Stored clusters", f"{len(sizes):,}",
              help=f"{counts['excluded']:,} records excluded in all")
    size_chart(sizes, 220)
with right:
    top = _data.clusters(top=50)
    labels = {c["cluster_id"]: f"{len(c['members'])} records - "
              f"{(c['members'][0]['text'] or '')[:80]}" for c in top}
    cluster_id = st.selectbox(f"Open a cluster (largest {len(top)})", list(labels),
                              format_func=labels.get, key="dedup_cluster")

cluster = next(c for c in top if c["cluster_id"] == cluster_id)
st.markdown(f"**Cluster `{cluster_id}`**: representative `{cluster['representative_id']}`")
DECISIONS = {"auto": None, "keep": "keep", "drop": "drop"}
per_row = 3
members = cluster["members"]
for start in range(0, len(members), per_row):
    for col, mem in zip(st.columns(per_row), members[start:start + per_row]):
        with col.container(border=True):
            rid = mem["record_id"]
            badge = ":red[excluded]" if mem["excluded"] else ":green[kept]"
            rep = " (representative)" if rid == cluster["representative_id"] else ""
            st.markdown(f"`{rid}` {badge}{rep}")
            sim = mem.get("similarity")
            st.caption(f"{mem['method']}" + (f", similarity {sim:.3f}" if sim is not None else "")
                       + (f", lexical {mem['lexical']:.2f}" if mem.get("lexical") is not None
                          else "") + (f", facts {mem['facts']}" if mem.get("facts") else "")
                       + (f"; evidence: {mem['rule']}" if mem.get("rule") else ""))
            if mem.get("prompt"):
                st.write(mem["prompt"])
                st.markdown(f"> {mem.get('response') or ''}")
            else:
                st.write(mem["text"])
            st.caption(mem.get("reason") or "")
            current = mem.get("override") or "auto"
            choice = st.segmented_control("Decision", list(DECISIONS), default=current,
                                          key=f"ovr_{rid}", label_visibility="collapsed")
            if choice is not None and choice != current:
                with _data.show_errors():
                    _data.set_override(rid, DECISIONS[choice])
                    st.rerun()
