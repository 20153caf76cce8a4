"""The fast classification head: a linear model on frozen sentence embeddings and on the
texts' word n-grams.

The export's records are embedded with the model dedup uses (the packaged all-MiniLM-L6-v2 by
default) through `pipelines.embed.embed_records`, so vectors come from the workspace's cache
(`W/embeddings/`) and only records it lacks are encoded; a second run on the same data is free.
Beside the embedding, a second, lexical channel reads the texts themselves: TF-IDF of word
unigrams and bigrams (scikit-learn's `CountVectorizer` + `TfidfTransformer`, sublinear tf, terms
in at least 2 train texts, at most `MAX_WORDS`). Why: a frozen sentence embedding blurs the
words that decide many real label sets (a speaker's names and topics, a product's category
terms): on the 2016 debates by party, logistic regression on the MiniLM vectors scored 0.64
accuracy and the embedding + words probe 0.76; on Rotten Tomatoes +0.03-0.05
(docs/benchmarks.md, issue 14 third pass).

The fit is scikit-learn's `LogisticRegression` (lbfgs, one BLAS thread): one on the
standardised embedding (C in `EMB_C_GRID`), one on the TF-IDF rows (C in `WORDS_C_GRID`),
blended as (1 - alpha) log p_embedding + alpha log p_words (alpha in `BLEND_GRID`, 0 = the
embedding alone); the blend's argmax is that of the same mix of the two models' logits, so the
result is ONE linear model over [embedding, TF-IDF]. The Cs, alpha and, under
`class_weight=auto`, the class weighting (none or square-root balanced) are chosen by 3-fold
stratified cross-validation on train when every class has at least 3 train rows; each fold's
vocabulary and idf come from its own train rows. The peer's own configuration (raw vectors,
C=1, no words: `LogisticRegression()`'s defaults) is one more candidate, so the search can fall
back to it. The CV score is the mean of accuracy and macro-F1, the two figures the head is
judged on; the test rows are never looked at. Without CV (a class with fewer than 3 train rows,
or `probe_c` set): embedding C `JOINT_FALLBACK_C` (or `probe_c`), words C `WORDS_FALLBACK_C`,
alpha `BLEND_FALLBACK`. Called without texts (`fit_probe(vectors, ...)`, or `probe_words:
false`), it is the embedding-only probe it was before: C from `C_GRID` on standardised vectors,
weighting none / sqrt / balanced.

The standardisation and the blend are folded into the saved weights, so prediction is
`vectors @ coef.T + tfidf(texts) @ coef_words.T + intercept`. Saved as `probe/probe.npz` (coef,
intercept, and for the words channel coef_words and idf: no pickle), `probe/probe.json`
(classes, embedding model, features, Cs, words share, class weighting, n-gram range) and, with
words, `probe/probe_words.json` (the vocabulary in column order).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pipelines.errors import DedupError, TrainError
from pipelines.textscript import DENSE, spaced

__all__ = ["ProbeModel", "fit_probe", "load_probe", "export_vectors", "run_probe", "C_GRID",
           "WEIGHTINGS", "EMB_C_GRID", "WORDS_C_GRID", "BLEND_GRID", "FEATURES"]

# Embedding-only probe (no texts), C on standardised features (z-scores): on Rotten Tomatoes
# samples of 1,000-6,000 rows the CV optimum sat in 0.001-0.03.
C_GRID = (0.001, 0.003, 0.01, 0.03)
FALLBACK_C = 0.01
# Class weightings the CV chooses among: per-class weight (n / (k * count)) ** power.
WEIGHTINGS = {"none": 0.0, "sqrt": 0.5, "balanced": 1.0}
MAX_ITER = 300             # measured: 20-60 iterations at these C; the cap bounds a bad case

# The words channel: an embedding LR (C on standardised vectors) and a words LR (C on unit-length
# TF-IDF rows), blended with the words' share alpha of the log-probabilities. Measured over
# C 0.001-0.03 x 1-30 x alpha 0-1 on Rotten Tomatoes (2,000 and 6,000 rows) and the 2016
# debates (docs/benchmarks.md, issue 14 third pass). alpha 0 is the embedding alone.
EMB_C_GRID = (0.003, 0.01)
WORDS_C_GRID = (3.0, 10.0)
BLEND_GRID = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
JOINT_FALLBACK_C, WORDS_FALLBACK_C, BLEND_FALLBACK = 0.003, 10.0, 0.5   # without CV
# Weightings the words model's CV chooses among: balanced weights won the CV (mean of accuracy
# and macro-F1) on Rotten Tomatoes samples and then cost accuracy on test (0.762 vs the peer's
# 0.770 on one), so only none and square-root balanced; `class_weight: balanced` still forces it.
JOINT_WEIGHTINGS = ("none", "sqrt")
WORD_NGRAMS = (1, 2)
WORD_MIN_DF = 2            # a term must occur in 2 train texts (a one-off cannot generalise)
MAX_WORDS = 50_000         # the most frequent terms kept: bounds the fit and the saved probe
# What a probe reads: the standardised embedding and the words (the default with texts), the
# standardised embedding alone (no texts), or the raw embedding at C=1 (the peer's configuration,
# a CV candidate).
FEATURES = ("embedding+words", "embedding", "raw embedding")


@dataclass
class ProbeModel:
    """A linear softmax head over sentence embeddings and, optionally, the texts' word
    n-grams; `predict` takes (n x d) vectors and, for a words probe, the texts they encode."""

    classes: list[str]
    coef: np.ndarray          # (k x d); a binary sklearn model's single row is expanded to two
    intercept: np.ndarray     # (k,)
    embed_model: str = "default"
    c: float = FALLBACK_C     # the embedding block's C (on standardised vectors; raw: on raw)
    class_weight: str = "balanced"     # one of WEIGHTINGS
    features: str = "embedding"        # one of FEATURES
    c_words: float | None = None       # the words LR's C (words probes)
    words_share: float = 0.0           # alpha: the words LR's share of the blend
    words: list[str] | None = None     # the words block's vocabulary, in column order
    idf: np.ndarray | None = None      # (V,) the TF-IDF weights of `words`
    coef_words: np.ndarray | None = None   # (k x V)
    word_ngrams: tuple[int, int] = WORD_NGRAMS
    selected_by: str = "fixed"         # "cv": the strengths (and weighting) chosen by the CV
    _vectoriser: Any = field(default=None, init=False, repr=False, compare=False)

    def word_features(self, texts: Sequence[str]):
        """The texts' TF-IDF rows over the probe's vocabulary (sparse, n x V)."""
        if self._vectoriser is None:
            self._vectoriser = _WordFeatures.from_saved(self.words, self.idf, self.word_ngrams)
        return self._vectoriser.transform(texts)

    def scores(self, vectors: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        s = np.asarray(vectors, dtype=np.float32) @ self.coef.T + self.intercept
        if self.coef_words is not None:
            if texts is None:
                raise TrainError("this probe also reads the texts (features embedding+words): "
                                 "pass them beside the vectors, or use predict_texts")
            if len(texts) != len(s):
                raise TrainError(f"{len(texts)} texts for {len(s)} vectors")
            s = s + np.asarray(self.word_features(texts) @ self.coef_words.T, dtype=np.float32)
        return s

    def predict(self, vectors: np.ndarray, texts: Sequence[str] | None = None) -> list[str]:
        return [self.classes[j] for j in self.scores(vectors, texts).argmax(1).tolist()]

    def predict_texts(self, texts: list[str]) -> list[str]:
        """Encode `texts` with the probe's embedding model, then predict."""
        from pipelines.embed import encode_texts

        texts = list(texts)
        return self.predict(encode_texts(texts, self.embed_model), texts)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": self.coef, "intercept": self.intercept}
        meta = {"classes": self.classes, "embed_model": self.embed_model, "c": self.c,
                "class_weight": self.class_weight, "features": self.features,
                "selected_by": self.selected_by}
        if self.coef_words is not None:
            arrays.update(coef_words=self.coef_words, idf=self.idf)
            meta.update(c_words=self.c_words, words_share=self.words_share,
                        word_ngrams=list(self.word_ngrams), vocabulary="probe_words.json")
            (folder / "probe_words.json").write_text(json.dumps(self.words, ensure_ascii=False),
                                                     encoding="utf-8")
        np.savez(folder / "probe.npz", **arrays)
        (folder / "probe.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def load_probe(folder: str | Path) -> ProbeModel:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
        with np.load(folder / "probe.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        words = None
        if meta.get("features") == "embedding+words":
            words = json.loads((folder / meta["vocabulary"]).read_text(encoding="utf-8"))
            if len(words) != arrays["coef_words"].shape[1] or len(words) != len(arrays["idf"]):
                raise ValueError(f"{len(words)} words for {arrays['coef_words'].shape[1]} "
                                 f"word weights")
    except (OSError, ValueError, KeyError) as exc:
        raise TrainError(f"{folder}: not a saved probe ({type(exc).__name__}: {exc})") from None
    # probes saved before the sqrt weighting wrote "balanced": true/false
    weighting = meta.get("class_weight") or ("balanced" if meta.get("balanced", True) else "none")
    return ProbeModel(meta["classes"], arrays["coef"], arrays["intercept"],
                      meta.get("embed_model", "default"), meta.get("c", FALLBACK_C), weighting,
                      features=meta.get("features", "embedding"), c_words=meta.get("c_words"),
                      words_share=meta.get("words_share", 0.0),
                      words=words, idf=arrays.get("idf"), coef_words=arrays.get("coef_words"),
                      word_ngrams=tuple(meta.get("word_ngrams", WORD_NGRAMS)),
                      selected_by=meta.get("selected_by", "fixed"))


def _preprocess(text: str) -> str:
    """Lower case, and a space around each character of a script written without word spaces
    (`pipelines.textscript`), so a Chinese or Japanese text has words at all."""
    return spaced(text.lower())


# scikit-learn's default token (two or more word characters), or one character of a script
# without word spaces: English and the like tokenise exactly as with the defaults.
_TOKENS = {"preprocessor": _preprocess,
           "token_pattern": rf"(?u){DENSE.pattern}|\b\w\w+\b"}


class _WordFeatures:
    """TF-IDF of word n-grams: one tokenisation of the train texts, from which each CV fold
    (and the final fit) takes the terms in `WORD_MIN_DF` of ITS train rows and their idf, so a
    fold's vocabulary never sees its held-out rows; the same CountVectorizer +
    TfidfTransformer pair turns new texts into rows at predict time."""

    def __init__(self, counter, tfidf, columns: np.ndarray | None = None):
        self.counter, self.tfidf, self.columns = counter, tfidf, columns

    @staticmethod
    def count(texts: Sequence[str], ngrams: tuple[int, int] = WORD_NGRAMS):
        """(CountVectorizer, counts n x V) over the n-grams in WORD_MIN_DF of `texts` (a
        superset of any subset's); ValueError when no term is left."""
        from sklearn.feature_extraction.text import CountVectorizer

        counter = CountVectorizer(ngram_range=ngrams, min_df=WORD_MIN_DF, dtype=np.float64,
                                  **_TOKENS)
        return counter, counter.fit_transform(list(texts)).tocsr()

    @classmethod
    def fit(cls, counter, counts, rows: np.ndarray) -> "_WordFeatures | None":
        """The vocabulary and idf of `rows` of `counts` (None: no term in WORD_MIN_DF rows)."""
        from sklearn.feature_extraction.text import TfidfTransformer

        sub = counts[rows]
        df = np.asarray((sub > 0).sum(0)).ravel()
        keep = np.flatnonzero(df >= WORD_MIN_DF)
        if len(keep) == 0:
            return None
        if len(keep) > MAX_WORDS:   # CountVectorizer's max_features rule: the most frequent
            freq = np.asarray(sub[:, keep].sum(0)).ravel()
            keep = np.sort(keep[np.argsort(-freq, kind="stable")[:MAX_WORDS]])
        return cls(counter, TfidfTransformer(sublinear_tf=True).fit(sub[:, keep]), keep)

    @classmethod
    def from_saved(cls, words: list[str], idf: np.ndarray, ngrams) -> "_WordFeatures":
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        tfidf = TfidfTransformer(sublinear_tf=True)
        tfidf.idf_ = np.asarray(idf, dtype=np.float64)
        return cls(CountVectorizer(ngram_range=tuple(ngrams), vocabulary=list(words),
                                   dtype=np.float64, **_TOKENS), tfidf)

    def rows(self, counts, rows: np.ndarray):
        return self.tfidf.transform(counts[rows][:, self.columns].tocsr())

    def transform(self, texts: Sequence[str]):
        counts = self.counter.transform(list(texts))
        if self.columns is not None:
            counts = counts[:, self.columns]
        return self.tfidf.transform(counts.tocsr())

    def vocabulary(self) -> list[str]:
        names = self.counter.get_feature_names_out()
        return [str(t) for t in (names if self.columns is None else names[self.columns])]


def _class_weights(mode: str, y: np.ndarray, k: int) -> np.ndarray:
    cnt = np.bincount(y, minlength=k).astype(np.float64)
    w = (len(y) / (k * np.maximum(cnt, 1))) ** WEIGHTINGS[mode]
    return w[y]


def _cv_score(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Mean of accuracy and macro-F1 over the k class codes (pipelines.metrics' definitions,
    zero_division 0), from one bincount: the CV scores a few hundred blends per fold."""
    cm = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)      # 2TP / (2TP + FP + FN)
    return float((tp.sum() / len(truth) + f1.mean()) / 2)


def fit_probe(vectors: np.ndarray, labels: list[str], classes: list[str], *,
              texts: Sequence[str] | None = None, c: float | None = None,
              class_weight: str | None = "balanced", seed: int = 0) -> ProbeModel:
    """Fit the probe; the scalings are folded into the saved weights.

    Args:
        texts: the train rows' texts: with them, the joint embedding + words model (the
            module docstring); without, the embedding-only probe.
        c: the embedding block's inverse L2 strength on standardised features; None: chosen by
            3-fold stratified CV on the mean of accuracy and macro-F1 (when every class has 3
            train rows, else `FALLBACK_C`, with texts `JOINT_FALLBACK_C`).
        class_weight: a `WEIGHTINGS` key, or None: the CV chooses among them as well (without
            CV: balanced when the classes are imbalanced, else none).
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise TrainError(f"train labels {', '.join(unknown)} are not among the classes {classes}")
    present = sorted(set(labels), key=classes.index)
    if len(present) < 2:
        raise TrainError(f"the probe needs at least two classes in train, got {present}")
    if class_weight is not None and class_weight not in WEIGHTINGS:
        raise TrainError(f"probe class_weight {class_weight!r}: expected one of {list(WEIGHTINGS)}")
    if texts is not None and len(texts) != len(labels):
        raise TrainError(f"the probe got {len(texts)} texts for {len(labels)} labels")
    X = np.asarray(vectors, dtype=np.float64)
    y = np.array([present.index(lab) for lab in labels])
    counts = np.bincount(y)
    modes = ([class_weight] if class_weight is not None else
             list(JOINT_WEIGHTINGS) if texts is not None else list(WEIGHTINGS))
    can_cv = counts.min() >= 3 and c is None
    if class_weight is None and not can_cv:
        # class_weights' auto rule
        modes = ["balanced" if counts.max() >= 1.5 * counts.min() else "none"]
    # One BLAS thread: on a shared machine several threads per fit made the old CV 20-30x
    # slower (195 s -> seconds on 4,789 x 384).
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = None
        if texts is not None:
            # the peer candidate keeps LogisticRegression()'s unweighted loss unless a
            # weighting is forced
            peer_mode = class_weight if class_weight is not None else "none"
            fitted = _fit_joint(X, y, list(texts), len(present), modes, peer_mode, c, can_cv,
                                seed)
        if fitted is None:   # no texts, or no word in 2 train texts: embedding only
            fitted = _fit_embedding(X, y, len(present), modes, c, can_cv, seed)
    coef, intercept, cw, w, meta = fitted
    if coef.shape[0] == 1:   # binary: sklearn keeps one row, the logit of class 1 vs class 0
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
        if cw is not None:
            cw = np.vstack([np.zeros_like(cw), cw])
    # Classes absent from train can never be predicted: their score is -inf.
    full_coef = np.zeros((len(classes), X.shape[1]), dtype=np.float32)
    full_int = np.full(len(classes), -np.inf, dtype=np.float32)
    full_cw = None if cw is None else np.zeros((len(classes), cw.shape[1]), dtype=np.float32)
    for j, cls in enumerate(present):
        full_coef[classes.index(cls)] = coef[j]
        full_int[classes.index(cls)] = intercept[j]
        if cw is not None:
            full_cw[classes.index(cls)] = cw[j]
    model = ProbeModel(list(classes), full_coef, full_int, coef_words=full_cw, **meta)
    if w is not None:
        model.words, model.idf = w.vocabulary(), w.tfidf.idf_.astype(np.float64)
        model._vectoriser = w
    return model


def _lr(cv: float, seed: int, warm: bool = False):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=cv, max_iter=MAX_ITER, warm_start=warm, random_state=seed)


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Sentence embeddings are unit vectors with tiny per-feature spread, which lbfgs converges
    # on slowly; on z-scores it takes 20-60 iterations.
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-8] = 1.0
    return (X - mean) / scale, mean, scale


def _fold_back(coef_z: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    coef = coef_z / scale                      # w.z + b = (w / s).x + (b - (w / s).m)
    return coef, intercept - coef @ mean


def _folds(y: np.ndarray, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=3, shuffle=True, random_state=seed).split(y, y))


def _best(score: dict, order: list) -> Any:
    # ties (to 1e-9): the earlier candidate in `order`
    return max(score, key=lambda key: (round(float(np.mean(score[key])), 9), -order.index(key)))


def _fit_embedding(X, y, k, modes, c, can_cv, seed):
    """The embedding-only probe: C in C_GRID on standardised vectors (as before the words)."""
    Z, mean, scale = _standardise(X)
    if can_cv:
        score: dict[tuple[float, str], list[float]] = {}
        for fit_i, test_i in _folds(y, seed):
            for mode in modes:
                m = _lr(C_GRID[0], seed, warm=True)
                for cv in C_GRID:            # ascending C, each fit starts from the last
                    m.set_params(C=cv).fit(Z[fit_i], y[fit_i],
                                           sample_weight=_class_weights(mode, y[fit_i], k))
                    score.setdefault((cv, mode), []).append(
                        _cv_score(y[test_i], m.predict(Z[test_i]), k))
        c, mode = _best(score, [(cv, md) for cv in C_GRID for md in modes])
        by = "cv"
    else:
        by = "fixed"
        c, mode = float(c if c is not None else FALLBACK_C), modes[0]
    m = _lr(c, seed).fit(Z, y, sample_weight=_class_weights(mode, y, k))
    coef, intercept = _fold_back(m.coef_, m.intercept_, mean, scale)
    return coef, intercept, None, None, {"c": float(c), "class_weight": mode,
                                         "features": "embedding", "selected_by": by}


def _fit_joint(X, y, texts, k, modes, peer_mode, c, can_cv, seed):
    """The embedding + words model (the module docstring); None when no word n-gram occurs in
    WORD_MIN_DF train texts (the caller fits the embedding alone).

    Two logistic regressions, one per channel, blended in log-probability space:
    (1 - alpha) log p_embedding + alpha log p_words. The blend's argmax is that of the same mix
    of their logits (log-softmax differs from the logits by one constant per row), so the result
    is one linear model over [embedding, TF-IDF]. Fitting the channels apart, not one model on
    hstack([embedding, tfidf]), is for time: a dense 384-column block inside a sparse matrix made
    each lbfgs step ~10x slower (4.7 s a fit on 4,800 rows, too slow for a CV in 60 s), at the
    same accuracy in the measurements (docs/benchmarks.md)."""
    try:
        counter, counts = _WordFeatures.count(texts)
    except ValueError:     # no word at all (e.g. only punctuation or a script without spaces)
        return None
    everything = np.arange(len(y))
    words = _WordFeatures.fit(counter, counts, everything)
    if words is None:
        return None
    Z, mean, scale = _standardise(X)

    def paths(rows, held, wf):
        """Held-out log-probs of every embedding (C, mode) and words (C, mode) candidate."""
        emb, wrd = {}, {}
        A, B = wf.rows(counts, rows), wf.rows(counts, held)
        for mode in modes:
            sw = _class_weights(mode, y[rows], k)
            m = _lr(EMB_C_GRID[0], seed, warm=True)
            for ce in EMB_C_GRID:          # ascending C, each fit starts from the last
                emb[ce, mode] = m.set_params(C=ce).fit(Z[rows], y[rows], sample_weight=sw) \
                    .predict_log_proba(Z[held])
            m = _lr(WORDS_C_GRID[0], seed, warm=True)
            for cw in WORDS_C_GRID:
                wrd[cw, mode] = m.set_params(C=cw).fit(A, y[rows], sample_weight=sw) \
                    .predict_log_proba(B)
        return emb, wrd

    if can_cv:
        order = [("raw", 1.0, peer_mode, 0.0)] + [
            (ce, cw, mode, a) for a in BLEND_GRID for mode in modes
            for ce in EMB_C_GRID for cw in WORDS_C_GRID]
        score: dict[tuple, list[float]] = {}
        for fit_i, test_i in _folds(y, seed):
            truth = y[test_i]
            # the peer's configuration: raw vectors, C=1, no words (LogisticRegression())
            m = _lr(1.0, seed).fit(X[fit_i], y[fit_i],
                                   sample_weight=_class_weights(peer_mode, y[fit_i], k))
            score.setdefault(order[0], []).append(_cv_score(truth, m.predict(X[test_i]), k))
            wf = _WordFeatures.fit(counter, counts, fit_i)
            if wf is None:     # no shared word in this fold: the blends score 0
                for key in order[1:]:
                    score.setdefault(key, []).append(0.0)
                continue
            emb, wrd = paths(fit_i, test_i, wf)
            for key in order[1:]:
                ce, cw, mode, a = key
                pred = ((1 - a) * emb[ce, mode] + a * wrd[cw, mode]).argmax(1)
                score.setdefault(key, []).append(_cv_score(truth, pred, k))
        c_emb, c_words, mode, alpha = _best(score, order)
        if c_emb == "raw":
            m = _lr(1.0, seed).fit(X, y, sample_weight=_class_weights(mode, y, k))
            return m.coef_, m.intercept_, None, None, {"c": 1.0, "class_weight": mode,
                                                       "features": "raw embedding",
                                                       "selected_by": "cv"}
    else:
        c_emb = float(c if c is not None else JOINT_FALLBACK_C)
        c_words, mode, alpha = WORDS_FALLBACK_C, modes[0], BLEND_FALLBACK
    sw = _class_weights(mode, y, k)
    me = _lr(c_emb, seed).fit(Z, y, sample_weight=sw)
    mw = _lr(c_words, seed).fit(words.rows(counts, everything), y, sample_weight=sw)
    coef, intercept = _fold_back(me.coef_, me.intercept_, mean, scale)
    if alpha == 0.0:           # the embedding alone won: no words block to store
        return coef, intercept, None, None, {
            "c": c_emb, "class_weight": mode, "features": "embedding",
            "selected_by": "cv" if can_cv else "fixed"}
    return ((1 - alpha) * coef, (1 - alpha) * intercept + alpha * mw.intercept_,
            alpha * mw.coef_, words, {
                "c": c_emb, "c_words": float(c_words), "words_share": float(alpha),
                "class_weight": mode, "features": "embedding+words",
                "selected_by": "cv" if can_cv else "fixed"})


def export_vectors(ws, manifest: dict[str, Any], split: str, rows: list[dict], embed_model: str,
                   progress: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """Embeddings of an export split's rows, row i = line i + 1, through the workspace cache.

    Returns the (n x d) vectors and counts {"cached", "embedded"}. Rows whose record is gone
    from the workspace (or a manifest without ids) are encoded directly, uncached."""
    from pipelines.embed import EmbedConfig, embed_records, encode_texts

    by_line = {e["line"]: e["id"] for e in manifest.get("records", []) if e.get("split") == split}
    ids = [by_line.get(i + 1) for i in range(len(rows))]
    if all(ids):
        try:
            emb = embed_records(ws, EmbedConfig(model=embed_model), record_ids=ids,
                                progress=progress)
            return emb.vectors, {"cached": emb.cache_hits, "embedded": emb.embedded}
        except DedupError:   # a record no longer in the workspace: encode the texts instead
            pass
    vecs = encode_texts([r["text"] for r in rows], embed_model)
    return vecs, {"cached": 0, "embedded": len(rows)}


def run_probe(ws, cfg, train_rows: list[dict], eval_rows: list[dict], manifest: dict[str, Any],
              classes: list[str], out: Path, events, echo: Callable[[str], None],
              progress: bool = False) -> dict[str, Any]:
    """Embed (cached), fit, save to `out`, and return the tuned predictions on `eval_rows` and
    what was chosen; the caller scores them like the LoRA classifier's."""
    embed_model = cfg.base_model or "default"
    t0 = time.perf_counter()
    X_train, c_train = export_vectors(ws, manifest, "train", train_rows, embed_model, progress)
    X_eval, c_eval = export_vectors(ws, manifest, "eval", eval_rows, embed_model, progress)
    embed_s = time.perf_counter() - t0
    labels = [r["label"] for r in train_rows]
    texts = [r["text"] for r in train_rows] if cfg.probe_words else None
    weighting = None if cfg.class_weight == "auto" else cfg.class_weight   # auto: by CV
    t1 = time.perf_counter()
    model = fit_probe(X_train, labels, classes, texts=texts, c=cfg.probe_c,
                      class_weight=weighting, seed=cfg.seed)
    fit_s = time.perf_counter() - t1
    model.embed_model = embed_model
    model.save(out)
    chosen = _chosen(cfg, model, weighting is None)
    cached = c_train["cached"] + c_eval["cached"]
    embedded = c_train["embedded"] + c_eval["embedded"]
    words = (f", words C={model.c_words:g} over {len(model.words)} n-grams at share "
             f"{model.words_share:g}" if model.coef_words is not None else "")
    echo(f"probe: {cached} embeddings from the cache, {embedded} encoded ({embed_s:.1f} s); "
         f"fit {model.features}: C={model.c:g}{words}, class weights {model.class_weight} in "
         f"{fit_s:.1f} s")
    eval_texts = [r["text"] for r in eval_rows]
    events.write("log", step=1, max_steps=1, epoch=1.0,
                 loss=_log_loss(model, X_train, labels, [r["text"] for r in train_rows]),
                 lr=0.0, tokens=0, tokens_per_s=0.0, eta_s=0.0)
    return {"eval_pred": model.predict(X_eval, eval_texts) if len(X_eval) else [],
            "chosen": chosen, "embeddings": {"model": embed_model, "cached": cached,
                                             "embedded": embedded, "seconds": round(embed_s, 2)},
            "fit_seconds": round(fit_s, 2)}


def _chosen(cfg, model: ProbeModel, cv_weighting: bool) -> dict[str, dict[str, Any]]:
    """What the fit chose and why (eval.json's `defaults`, printed before the metrics)."""
    cv = model.selected_by == "cv"
    how = "3-fold CV on train (mean of accuracy and macro-F1)"
    if not cfg.probe_words or model.features == "embedding":
        grid = f"{list(C_GRID)} on standardised vectors"
    else:
        grid = (f"embedding C in {list(EMB_C_GRID)} x words C in {list(WORDS_C_GRID)} x the "
                f"words' share in {list(BLEND_GRID)}, or raw vectors at C=1 without words")
    why_c = ("explicit" if cfg.probe_c else f"{how} over {grid}" if cv
             else "fewer than 3 train rows in a class: no CV, the fallback")
    why_features = ("probe_words=false" if not cfg.probe_words
                    else "no word n-gram occurs in 2 train texts" if model.features == "embedding"
                    else "chosen by the same CV" if cv else "probe_words=true")
    chosen = {
        "probe_features": {"value": model.features, "why": why_features},
        "probe_c": {"value": model.c, "why": why_c},
        "class_weights": {"value": None if model.class_weight == "none" else model.class_weight,
                          "why": f"class_weight={cfg.class_weight}"
                                 + (f"; one of {list(WEIGHTINGS)} chosen by the same CV"
                                    if cv_weighting and cv else "")}}
    if model.coef_words is not None:
        chosen["probe_c_words"] = {
            "value": model.c_words,
            "why": f"TF-IDF of the {len(model.words)} word 1-2-grams in 2+ train texts; "
                   + ("C chosen by the same CV" if cv else f"C fixed at {WORDS_FALLBACK_C:g}")}
        chosen["probe_words_share"] = {
            "value": model.words_share,
            "why": "the words LR's share of the blended log-probabilities; "
                   + ("chosen by the same CV" if cv else f"fixed at {BLEND_FALLBACK:g}")}
    return chosen


def _log_loss(model: ProbeModel, X: np.ndarray, labels: list[str], texts: list[str]) -> float:
    """Mean cross-entropy of the fitted probe on train (the events file's one 'loss')."""
    s = model.scores(X, texts).astype(np.float64)
    s -= s.max(1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(1, keepdims=True))
    idx = [model.classes.index(lab) for lab in labels]
    return round(float(-logp[np.arange(len(idx)), idx].mean()), 4)
