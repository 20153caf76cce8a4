"""Which languages a workspace's records are in, against what the embedding model was trained
on: said before a run that leans on the embeddings (dedup's semantic stage, the on-topic filter)
rather than discovered in its results.

The packaged models (`default`: all-MiniLM-L6-v2; `static` and `auto`: the static model
distilled from it) were trained on English. On Chinese or Arabic text their vectors carry little
meaning, so two different records can look alike and two copies unlike: the dedup rules then
rest on the exact and lexical evidence, which hold in every script.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from typing import Iterable

__all__ = ["ENGLISH_MODELS", "language_mix", "language_note", "workspace_language_note"]

ENGLISH_MODELS = ("default", "static", "auto")   # the packaged models: English training data
_MIN_CHARS = 20   # shorter texts are too short for a language guess to mean much


def language_mix(texts: Iterable[str], *, sample: int = 400) -> Counter:
    """Language codes (py3langid, ISO 639-1) of up to `sample` texts of at least 20 characters."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    long_enough = (t for t in texts if t and len(t.strip()) >= _MIN_CHARS)
    return Counter(ident.classify(t[:1000])[0] for t in islice(long_enough, sample))


def language_note(texts: Iterable[str], model: str, *, sample: int = 400,
                  max_other: float = 0.2) -> str | None:
    """A warning when more than `max_other` of a sample of `texts` is not English and `model`
    is one of the packaged English models; None otherwise (or for a model of the user's own,
    which may be multilingual)."""
    if model not in ENGLISH_MODELS:
        return None
    texts = list(islice(texts, sample))
    # English is almost all ASCII letters: only a sample with non-ASCII letters in more than
    # a tenth of its texts pays for loading the language identifier (~2 s)
    foreign = sum(any(c.isalpha() and not c.isascii() for c in t) for t in texts if t)
    if foreign <= 0.1 * len(texts):
        return None
    mix = language_mix(texts, sample=sample)
    n = sum(mix.values())
    other = n - mix.get("en", 0)
    if not n or other / n <= max_other:
        return None
    top = ", ".join(f"{code} {count / n:.0%}" for code, count in mix.most_common(4)
                    if code != "en")
    return (f"{other / n:.0%} of a {n}-record sample is not English ({top}): the embedding "
            f"model '{model}' (all-MiniLM-L6-v2 or distilled from it) was trained on English, "
            f"so on those records its similarity is weak evidence and dedup rests on the exact "
            f"and lexical stages; a multilingual sentence-transformers folder as --model would "
            f"give the semantic stage meaning there")


def workspace_language_note(ws, model: str, *, sample: int = 400) -> str | None:
    """`language_note` on the first `sample` records of the workspace `ws` (ids are content
    hashes, so the first rows are a fair sample); None at once for a model of the user's own."""
    if model not in ENGLISH_MODELS:
        return None
    from pipelines.store import iter_records

    with ws.connect() as conn:
        texts = [r.text for _, r in zip(range(sample), iter_records(conn, batch_size=sample))]
    return language_note(texts, model, sample=sample)
