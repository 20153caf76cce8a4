"""A learned router between task adapters: softmax regression on MiniLM embeddings of each line
of a prompt (or of the whole prompt, with hashed word n-grams).

    router, entry = train_router(ws, RouterConfig(name="router"))
    router.route(["summarise this claim: ..."])[0]   # Route(model=..., confidence=0.97, ...)

Each adapter's training export gives its prompts (the user-side text a client would send: system
and user turns for chat rows, instruction and input for alpaca rows, the text for classification
rows), labelled with the adapter's name. The router is trained on the exports' train splits and
evaluated on their eval splits (held out from the adapters too), so its routing accuracy is
measured on prompts neither it nor the adapters saw. Below `threshold` confidence it does not
guess: the route says which fallback applies (`base`: answer with the base model; `ask`: ask
the client which task it means).

Features (`RouterConfig.features`). Two tasks over the same notes differ only by a sentence of
instruction, which a whole-prompt embedding dilutes in a note's worth of shared content.
`lines` (the default) embeds each line on its own and pools the line vectors (mean and max), so
the instruction line weighs as much as the content, and a reworded instruction embeds near the
trained one. `embedding` is the whole prompt's embedding; `embedding+ngrams` adds hashed word
uni- and bigram counts of the whole prompt and, in a space of their own, of its first line: exact
on the instructions seen in training, but a reworded instruction's words were never features
(`bench/serve.py --routing-only` measures both cases, docs/benchmarks.md).

Saved as `W/models/routers/<name>/{router.json, weights.npz}` and registered (kind `router`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pipelines.embed import DEFAULT_MODEL, encode_texts
from pipelines.config import check_choice
from pipelines.errors import ConfigError, ModelError
from pipelines.metrics import classification_report

__all__ = ["RouterConfig", "Router", "Route", "train_router", "load_router", "prompt_text",
           "row_prompt", "task_prompts", "fit_router", "evaluate_router", "ngram_features",
           "line_features", "prompt_lines", "FALLBACKS", "FEATURES"]

FALLBACKS = ("base", "ask")
FEATURES = ("embedding", "embedding+ngrams", "lines")


@dataclass
class RouterConfig:
    """Options of `curate models router train`."""

    name: str = field(default="router", metadata={"help": "registry name of the router"})
    models: list[str] | None = field(default=None, metadata={
        "help": "adapters to route between (default: every registered adapter)"})
    threshold: float = field(default=0.5, metadata={
        "help": "below this confidence the router falls back instead of guessing"})
    fallback: str = field(default="base", metadata={
        "help": "base: answer with the base model; ask: reply asking which task is meant",
        "choices": FALLBACKS})
    encoder: str = field(default=DEFAULT_MODEL, metadata={
        "help": "sentence-embedding model of the prompts (pipelines.embed)"})
    features: str = field(default="lines", metadata={
        "help": "lines: MiniLM embedding of each line of the prompt on its own, mean- and "
                "max-pooled (robust to a reworded instruction); embedding: of the whole prompt; "
                "embedding+ngrams: the whole prompt's plus hashed word n-grams of the prompt and "
                "of its first line (exact on the training instructions, lost on reworded ones)",
        "choices": FEATURES})
    ngram_dims: int = field(default=2048, metadata={
        "help": "hashed n-gram buckets per space (whole prompt, instruction line)"})
    l2: float | None = field(default=None, metadata={
        "help": "L2 penalty of the softmax regression (default: 1e-2 for lines, whose pooled "
                "line vectors overfit the one trained instruction per task at less, 1e-3 for "
                "the others, which 1e-2 underfits)"})
    heldout_fraction: float = field(default=0.25, metadata={
        "help": "share of an export's train prompts held out when it has no eval split"})

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
            raise ConfigError(f"router.name must be a plain name, got {self.name!r}")
        if not isinstance(self.threshold, (int, float)) or not 0 <= self.threshold < 1:
            raise ConfigError(f"router.threshold must be in [0, 1), got {self.threshold!r}")
        check_choice("router.fallback", self.fallback, FALLBACKS)
        check_choice("router.features", self.features, FEATURES)
        if not isinstance(self.ngram_dims, int) or not 16 <= self.ngram_dims <= 1 << 20:
            raise ConfigError(f"router.ngram_dims must be an integer in [16, 1048576], "
                              f"got {self.ngram_dims!r}")
        if self.l2 is None:
            self.l2 = 1e-2 if self.features == "lines" else 1e-3
        if not isinstance(self.l2, (int, float)) or self.l2 < 0:
            raise ConfigError(f"router.l2 must be >= 0, got {self.l2!r}")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError(f"router.heldout_fraction must be in (0, 1), "
                              f"got {self.heldout_fraction!r}")
        if self.models is not None and len(set(self.models)) < 2:
            raise ConfigError(f"router.models must name at least two adapters, got {self.models!r}")


@dataclass(frozen=True)
class Route:
    """Where one prompt goes: `model` (None when the router fell back), its confidence, every
    model's probability, and the fallback taken (None when confident)."""

    model: str | None
    confidence: float
    scores: dict[str, float]
    fallback: str | None = None
    best: str | None = None   # the most likely model even when below the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- prompts -----------------------------------------------------------------------------------
def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """The user-side text of a conversation: system and user turns, trailing assistant cut."""
    msgs = list(messages)
    while msgs and msgs[-1].get("role") == "assistant":
        msgs.pop()
    return "\n".join(str(m.get("content") or "") for m in msgs
                     if m.get("role") in ("system", "user")).strip()


def row_prompt(row: dict[str, Any], fmt: str) -> str | None:
    """The prompt of one export row, as a client would send it."""
    if fmt == "classification":
        return row.get("text")
    if fmt == "chat":
        return prompt_text(row.get("messages") or []) or None
    if fmt == "alpaca":
        parts = [row.get("system"), row.get("instruction"), row.get("input")]
        return "\n".join(p for p in parts if p).strip() or None
    return None


def _held_out(text: str, fraction: float) -> bool:
    h = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def task_prompts(ws, entry, heldout_fraction: float = 0.25) -> tuple[list[str], list[str]]:
    """(train, held-out) prompts of one adapter's export: the export's own train and eval splits,
    or a hash split of train when it has no eval rows."""
    from pipelines.export import load_manifest, read_split

    if not entry.export:
        raise ModelError(f"model {entry.name!r} names no export: nothing to learn its prompts from")
    try:
        manifest = load_manifest(ws, entry.export)
        train_rows = read_split(ws, entry.export, "train")
        eval_rows = read_split(ws, entry.export, "eval")
    except OSError as exc:
        raise ModelError(f"model {entry.name!r}: its export {entry.export} is unreadable "
                         f"({exc.__class__.__name__}: {exc.filename})") from None
    fmt = manifest["format"]
    train = [p for p in (row_prompt(r, fmt) for r in train_rows) if p]
    held = [p for p in (row_prompt(r, fmt) for r in eval_rows) if p]
    if not held:
        held = [p for p in train if _held_out(p, heldout_fraction)]
        train = [p for p in train if not _held_out(p, heldout_fraction)]
    if not train:
        raise ModelError(f"model {entry.name!r}: export {entry.export} has no train prompts")
    return train, held


# -- features ----------------------------------------------------------------------------------
_WORD = re.compile(r"\w+", re.UNICODE)


def _grams(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def ngram_features(texts: Sequence[str], dims: int) -> np.ndarray:
    """Hashed word uni- and bigram counts (log1p, each space L2-normalised) of each whole text in
    the first `dims` columns and of its first non-empty line in the next `dims`: n x 2·dims."""
    out = np.zeros((len(texts), 2 * dims), dtype=np.float32)
    for i, text in enumerate(texts):
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        for offset, part in ((0, text), (dims, first)):
            for g in _grams(part):
                out[i, offset + zlib.crc32(g.encode("utf-8")) % dims] += 1.0
            block = out[i, offset:offset + dims]
            np.log1p(block, out=block)
            norm = float(np.linalg.norm(block))
            if norm:
                block /= norm
    return out


def prompt_lines(text: str) -> list[str]:
    """The non-empty lines of a prompt (the whole text when it has none)."""
    return [ln.strip() for ln in text.splitlines() if ln.strip()] or [text]


def line_features(texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Each text's lines embedded one by one, then the mean (L2-normalised) and the max of its
    line vectors: n x 2·d. An instruction line weighs as much as a note's worth of content, and
    a paraphrase of it embeds near it, where an n-gram of an unseen word is a feature never
    trained."""
    lines = [prompt_lines(t) for t in texts]
    flat = [ln for ls in lines for ln in ls]
    vecs = np.asarray(encode(flat), dtype=np.float32) if flat else np.zeros((0, 0), np.float32)
    out, i = [], 0
    for ls in lines:
        v = vecs[i:i + len(ls)]
        i += len(ls)
        mean = v.mean(axis=0)
        out.append(np.concatenate([mean / (np.linalg.norm(mean) or 1.0), v.max(axis=0)]))
    return np.array(out, dtype=np.float32).reshape(len(texts), -1)


# -- the classifier ----------------------------------------------------------------------------
def _fit_softmax(x: np.ndarray, y: np.ndarray, k: int, l2: float, seed: int = 0):
    """Multinomial logistic regression by L-BFGS (torch, already a dependency of the trainer)."""
    import torch

    torch.manual_seed(seed)
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    w = torch.zeros((x.shape[1], k), requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


class Router:
    """A fitted router: labels (model names), weights, threshold, fallback and encoder."""

    def __init__(self, labels: list[str], weights: np.ndarray, bias: np.ndarray, *,
                 threshold: float, fallback: str, encoder: str,
                 encode: Callable[[list[str]], np.ndarray] | None = None,
                 features: str = "embedding", ngram_dims: int = 2048):
        self.labels, self.weights, self.bias = list(labels), weights, bias
        self.threshold, self.fallback, self.encoder = threshold, fallback, encoder
        self.features, self.ngram_dims = features, ngram_dims
        self._encode = encode or (lambda texts: encode_texts(texts, model=encoder))

    def featurize(self, texts: list[str], embedded: np.ndarray | None = None) -> np.ndarray:
        """The router's input rows; `embedded` reuses whole-prompt embeddings already computed
        (not for `lines`, which embeds each line: pass a caching `encode` instead)."""
        if self.features == "lines":
            return line_features(list(texts), self._encode)
        x = self._encode(list(texts)) if embedded is None else embedded
        if self.features == "embedding+ngrams":
            x = np.hstack([x, ngram_features(texts, self.ngram_dims)])
        return x

    def probabilities(self, texts: list[str], embedded: np.ndarray | None = None) -> np.ndarray:
        logits = self.featurize(list(texts), embedded) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def route(self, texts: list[str], embedded: np.ndarray | None = None) -> list[Route]:
        out = []
        for row in self.probabilities(texts, embedded):
            i = int(row.argmax())
            conf = float(row[i])
            scores = {m: round(float(s), 4) for m, s in zip(self.labels, row)}
            confident = conf >= self.threshold
            out.append(Route(model=self.labels[i] if confident else None, confidence=round(conf, 4),
                             scores=scores, fallback=None if confident else self.fallback,
                             best=self.labels[i]))
        return out

    def save(self, folder: Path, evaluation: dict[str, Any]) -> None:
        """Write to a temp folder, then rename over the old one."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        np.savez(tmp / "weights.npz", weights=self.weights, bias=self.bias)
        meta = {"labels": self.labels, "threshold": self.threshold, "fallback": self.fallback,
                "encoder": self.encoder, "features": self.features,
                "ngram_dims": self.ngram_dims, "evaluation": evaluation}
        (tmp / "router.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            os.replace(folder, old)
            os.replace(tmp, folder)
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)


def load_router(path: str | Path, encode: Callable | None = None) -> Router:
    path = Path(path)
    try:
        meta = json.loads((path / "router.json").read_text(encoding="utf-8"))
        arrays = np.load(path / "weights.npz")
    except (OSError, ValueError) as exc:
        raise ModelError(f"router at {path} is unreadable ({exc.__class__.__name__}); "
                         f"train it again: curate models router train") from None
    return Router(meta["labels"], arrays["weights"], arrays["bias"], threshold=meta["threshold"],
                  fallback=meta["fallback"], encoder=meta["encoder"], encode=encode,
                  features=meta.get("features", "embedding"),   # routers saved before n-grams
                  ngram_dims=meta.get("ngram_dims", 2048))


def train_router(ws, cfg: RouterConfig | None = None, *,
                 encode: Callable[[list[str]], np.ndarray] | None = None):
    """Fit, evaluate, save and register a router over registered adapters; returns
    `(router, entry)`. The evaluation: routing accuracy on the held-out prompts overall and per
    task, how often it falls back, accuracy where it does not, and the confusion between tasks.
    """
    from trainer.registry import SERVED_HEADS, get_model, list_models, register_router

    cfg = cfg or RouterConfig()
    adapters = list_models(ws, kind="adapter")
    if cfg.models:
        chosen = [get_model(ws, n, adapters) for n in cfg.models]
        unserved = [e.name for e in chosen if e.head not in SERVED_HEADS]
        if unserved:
            raise ModelError(f"a router routes between {' and '.join(SERVED_HEADS)} adapters; "
                             f"{', '.join(unserved)} cannot be served")
    else:   # by default every adapter `curate serve` can load (not dpo: no prompts to learn)
        chosen = [e for e in adapters if e.head in SERVED_HEADS]
    if len(chosen) < 2:
        raise ModelError(f"a router needs at least two adapters; registered: "
                         f"{', '.join(e.name for e in adapters) or 'none'}")
    prompts = {e.name: task_prompts(ws, e, cfg.heldout_fraction) for e in chosen}
    router, evaluation = fit_router(prompts, cfg, encode=encode)
    folder = ws.subdir("models") / "routers" / cfg.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    router.save(folder, evaluation)
    entry = register_router(ws, cfg.name, folder, routes=router.labels, base_model=cfg.encoder,
                            evaluation=evaluation)
    return router, entry


def fit_router(prompts: dict[str, tuple[list[str], list[str]]], cfg: RouterConfig, *,
               encode: Callable[[list[str]], np.ndarray] | None = None,
               embedded: dict[str, np.ndarray] | None = None) -> tuple[Router, dict[str, Any]]:
    """Fit a router on `{model: (train prompts, held-out prompts)}` and evaluate it on the
    held-out ones; returns `(router, evaluation)`. `embedded` (`{"train": ..., "held": ...}`,
    rows in the same order) reuses embeddings, to compare feature sets on one encoding."""
    labels = list(prompts)
    encode = encode or (lambda texts: encode_texts(texts, model=cfg.encoder))
    train_x, train_y, held_x, held_y = [], [], [], []
    for i, name in enumerate(labels):
        tr, ho = prompts[name]
        train_x += tr
        train_y += [i] * len(tr)
        held_x += ho
        held_y += [i] * len(ho)
    router = Router(labels, np.zeros(0), np.zeros(0), threshold=cfg.threshold,
                    fallback=cfg.fallback, encoder=cfg.encoder, encode=encode,
                    features=cfg.features, ngram_dims=cfg.ngram_dims)
    x = router.featurize(train_x, None if embedded is None else embedded["train"])
    router.weights, router.bias = _fit_softmax(x, np.array(train_y), len(labels), cfg.l2)
    evaluation = evaluate_router(router, held_x, [labels[i] for i in held_y],
                                 None if embedded is None else embedded["held"])
    evaluation.update(n_train=len(train_x), threshold=cfg.threshold, fallback=cfg.fallback,
                      features=cfg.features)
    return router, evaluation


def evaluate_router(router: Router, texts: list[str], truth: list[str],
                    embedded: np.ndarray | None = None) -> dict[str, Any]:
    """Routing accuracy (argmax) overall and per task, the fallback rate at the router's
    threshold, accuracy on the prompts it routes confidently, and the confusion matrix."""
    if not texts:
        return {"n": 0, "accuracy": None, "per_task": {}, "confusion": [], "classes": router.labels,
                "fallback_rate": None, "confident_accuracy": None}
    routes = router.route(texts, embedded)
    pred = [r.best for r in routes]
    report = classification_report(truth, pred, router.labels).to_dict(digits=4)
    confident = [(t, r.model) for t, r in zip(truth, routes) if r.model is not None]
    per_task = {}
    for m in router.labels:
        mine = [(t, p) for t, p in zip(truth, pred) if t == m]
        per_task[m] = {"n": len(mine),
                       "accuracy": round(sum(t == p for t, p in mine) / len(mine), 4) if mine else None}
    return {"n": len(texts), "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "per_task": per_task, "classes": router.labels, "confusion": report["confusion"],
            "fallback_rate": round(1 - len(confident) / len(texts), 4),
            "confident_accuracy": (round(sum(t == p for t, p in confident) / len(confident), 4)
                                   if confident else None)}
