"""Cheaper ANN settings against the current candidates: each setting's build and search seconds,
the share of the current HNSW's (M 32, efConstruction 40, efSearch 64) candidate pairs it finds,
and the share of the generator's true duplicate pairs among its candidates (k = 16, cosine >=
0.70, the scale set's texts, the static model). One JSON line per setting.

    python bench/dedup_ann.py 100000                                  # every setting
    python bench/dedup_ann.py 100000 "hnsw M16 efC40 ef64"            # the current one + these
"""
import json, sys, time, tempfile, os
from pathlib import Path
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.getcwd() + "/bench")
import numpy as np, faiss, math
import dedup as bd
from pipelines.embed import encode_texts
from pipelines.embed.static import ensure_static_model
n = int(sys.argv[1])
texts, origin = bd.hard_negative_set(n, p=bd.SCALE_P)
folded = [" ".join(t.split()) for t in texts]
uniq = list(dict.fromkeys(folded))
with tempfile.TemporaryDirectory() as tmp:
    folder = str(ensure_static_model(Path(tmp)))
    t = time.perf_counter()
    vecs = np.ascontiguousarray(encode_texts(uniq, folder), np.float32)
    print("encode", round(time.perf_counter() - t, 1), vecs.shape, flush=True)
N = len(vecs); k = 17; min_sim = 0.70
def run(make, label):
    t = time.perf_counter(); index = make(); index.add(vecs); b = time.perf_counter() - t
    t = time.perf_counter(); keys = []
    for s in range(0, N, 4096):
        sim, nb = index.search(vecs[s:s + 4096], k)
        q = np.repeat(np.arange(s, s + len(nb)), k); nb = nb.reshape(-1); sim = sim.reshape(-1)
        keep = (nb >= 0) & (nb != q) & (sim >= min_sim)
        keys.append(np.minimum(q[keep], nb[keep]) * N + np.maximum(q[keep], nb[keep]))
    se = time.perf_counter() - t
    return np.unique(np.concatenate(keys)), b, se
d = vecs.shape[1]
def hnsw(M, efc, ef):
    def f():
        ix = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT); ix.hnsw.efConstruction = efc; ix.hnsw.efSearch = ef; return ix
    return f
def ivf(nlist, nprobe):
    def f():
        q = faiss.IndexFlatIP(d); ix = faiss.IndexIVFFlat(q, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0); ix.train(vecs[rng.choice(N, min(N, nlist * 64), replace=False)]); ix.nprobe = nprobe; return ix
    return f
# truth pairs (true duplicates), to see what the candidates lose that matters
grp = {}
for t_, o in zip(folded, origin): grp.setdefault(o, set()).add(t_)
pos = {t_: i for i, t_ in enumerate(uniq)}
truth = set()
for g in grp.values():
    g = sorted(pos[x] for x in g)
    for a in range(len(g)):
        for b_ in range(a + 1, len(g)): truth.add(g[a] * N + g[b_])
truth = np.array(sorted(truth))
ref = None
configs = [("hnsw M32 efC40 ef64 (current)", hnsw(32, 40, 64))] + [(l, f) for l, f in [
    ("hnsw M16 efC40 ef64", hnsw(16, 40, 64)), ("hnsw M16 efC32 ef32", hnsw(16, 32, 32)),
    ("hnsw M32 efC40 ef32", hnsw(32, 40, 32)),
    (f"ivf {int(4*math.sqrt(N))} nprobe 32", ivf(int(4 * math.sqrt(N)), 32)),
    (f"ivf {int(4*math.sqrt(N))} nprobe 64", ivf(int(4 * math.sqrt(N)), 64))] if l in sys.argv[2:] or not sys.argv[2:]]
out = []
for label, make in configs:
    keys, b, se = run(make, label)
    if ref is None: ref = keys
    rec = len(np.intersect1d(keys, ref)) / len(ref)
    tr = len(np.intersect1d(keys, truth)) / len(truth)
    row = {"config": label, "build_s": round(b, 1), "search_s": round(se, 1), "pairs": len(keys), "recall_vs_current": round(rec, 4), "true_dup_pairs_found": round(tr, 4), "load": os.getloadavg()[0]}
    print(json.dumps(row), flush=True); out.append(row)
