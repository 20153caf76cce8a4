"""Scripts written without spaces between words (Chinese, Japanese, Thai, ...): what a word is
there, for the steps that count or cut words (quality filters, dedup shingles and facts).

Splitting on whitespace makes a whole Chinese sentence one "word": a default rule such as
`length_words < 3` then excludes every Chinese record. These helpers count each character of
such a script as a word of its own (a Chinese word is ~1.6 characters, so counts run high
there, never low) and leave every other script to whitespace.
"""

from __future__ import annotations

import re

__all__ = ["DENSE", "dense_share", "words", "spaced"]

# Han (with extension A and the compatibility block), Hiragana and Katakana, Thai, Lao,
# Myanmar, Khmer.
DENSE = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
                   r"\u4e00-\u9fff\uf900-\ufaff]")


def dense_share(text: str) -> float:
    """The share of `text`'s non-space characters that are of a script without word spaces."""
    if text.isascii():
        return 0.0
    chars = len(text) - sum(c.isspace() for c in text)
    return len(DENSE.findall(text)) / chars if chars else 0.0


def spaced(text: str) -> str:
    """`text` with a space on either side of each character of a script without word spaces, so
    that whitespace splitting and `\\b` see one word per character ("5000元" -> "5000 元 ")."""
    return text if text.isascii() else DENSE.sub(r" \g<0> ", text)


def words(text: str) -> list[str]:
    """The words of `text`: whitespace-separated, each character of a dense script one word.
    Outside ASCII a token without a letter or digit (the full-width "，" and "。" left alone by
    the spacing, a free-standing "—") is not a word."""
    if text.isascii():
        return text.split()
    return [w for w in spaced(text).split() if any(c.isalnum() for c in w)]
