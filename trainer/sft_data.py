"""Whole conversations as SFT examples: every assistant turn trained, lengths measured and fitted.

An export row becomes `input_ids` + `labels` here, before TRL sees it (TRL takes a tokenised
dataset as it is). Why not TRL's `assistant_only_loss`: it needs a chat template with
`{% generation %}` markers, and neither the tiny model's template nor most base models' have
them. Instead the conversation is rendered once with the tokenizer's own template, each
message's character span is found by rendering the prefixes (`msgs[:i]`), and a token is
trained (label = its id) when it starts inside an assistant turn's content (its end-of-turn token
included), else -100. This works for any template whose rendering of a prefix is a prefix of
the whole rendering (ChatML, Llama, the default `<|role|>` one).

Length (docs/training.md): the default `max_seq_length` is the 95th percentile of the train
rows' token lengths rounded up to a multiple of 64, capped by the model's positions and by
`MEMORY_CAP` (`trainer.lengths`: the classifier head uses the same rule). A conversation that is
too long loses its oldest turns first (system turns stay, the final user -> assistant exchange
never goes); if the final exchange alone is still too long, the prompt's oldest tokens go; only
an answer longer than the limit is cut (counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import TrainError
from pipelines.export.turns import fit_turns, length_summary
from trainer.lengths import MEMORY_CAP, default_max_seq_length, source_line

__all__ = ["MEMORY_CAP", "WARN_CUT_SHARE", "row_messages", "TokenizedChat", "tokenize_chat",
           "fit_to_length", "default_max_seq_length", "LengthReport", "prepare_examples"]

WARN_CUT_SHARE = 0.05    # warn before training when more than this share of answers is cut


def row_messages(row: dict[str, Any], fmt: str) -> list[dict[str, str]]:
    """An export row (chat or alpaca, with alpaca's `system` and `history`) as the messages an
    SFT example trains on; [] when no user -> assistant exchange is left (`fit_turns`)."""
    if fmt == "chat":
        msgs = [{"role": m["role"], "content": m["content"]} for m in row.get("messages") or ()]
    elif fmt == "alpaca":
        msgs = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        for user, answer in row.get("history") or ():
            msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        msgs += [{"role": "user", "content": user},
                 {"role": "assistant", "content": row["output"]}]
    else:
        raise TrainError(f"the sft head trains on chat or alpaca exports, not {fmt!r} "
                         f"(use head=classifier for a classification export)")
    return fit_turns(msgs)[0]


@dataclass
class TokenizedChat:
    """One rendered conversation: token ids, the loss mask, and each message's token range."""

    ids: list[int]
    mask: list[int]                            # 1 = trained (assistant content), 0 = not
    spans: list[tuple[int, int]] = field(default_factory=list)   # message i -> [start, end)

    def __len__(self) -> int:
        return len(self.ids)


def _render(tok, msgs, *, generation: bool = False) -> str:
    if not msgs:
        return ""
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation)


def tokenize_chat(tok, msgs: list[dict[str, str]]) -> TokenizedChat:
    """Render `msgs` with the tokenizer's chat template and mask every assistant turn.

    Raises:
        TrainError: the template renders a prefix of the conversation differently from the
            start of the whole (the turns cannot be located).
    """
    full = _render(tok, msgs)
    bounds, trained = [], []          # per message: char [start, end); assistant content spans
    start = 0
    for i, m in enumerate(msgs):
        upto = _render(tok, msgs[: i + 1])
        if not full.startswith(upto):
            raise TrainError("the tokenizer's chat template renders a conversation's first turns "
                             "differently from the whole, so its assistant turns cannot be "
                             "located for the loss mask; use a template whose prefixes agree "
                             "(see docs/training.md)")
        if m["role"] == "assistant":
            head = _render(tok, msgs[:i], generation=True)
            trained.append((len(head) if full.startswith(head) and len(head) >= start else start,
                            len(upto)))
        bounds.append((start, len(upto)))
        start = len(upto)
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    mask = [int(any(a <= o[0] < b for a, b in trained)) for o in offsets]
    spans = []
    for a, b in bounds:
        inside = [j for j, o in enumerate(offsets) if a <= o[0] < b]
        spans.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    return TokenizedChat(ids=list(enc["input_ids"]), mask=mask, spans=spans)


def fit_to_length(tok, msgs: list[dict[str, str]], max_len: int,
                  tokenized: TokenizedChat | None = None) -> tuple[TokenizedChat, int, bool]:
    """The conversation within `max_len` tokens, keeping the completion.

    Returns (example, turns dropped, final answer cut). Oldest non-system turns go first (whole
    exchanges: the first remaining turn after the system is always a user turn); the last user
    turn and the final answer stay. Still too long: the prompt's oldest tokens go (the answer is
    whole); an answer longer than `max_len` alone keeps its start and counts as cut.
    """
    tc = tokenized or tokenize_chat(tok, msgs)
    dropped = 0
    msgs = list(msgs)
    while len(tc) > max_len:
        body = [i for i, m in enumerate(msgs) if m["role"] != "system"]
        last_user = max(i for i in body if msgs[i]["role"] == "user")
        droppable = [i for i in body if i < last_user]
        if not droppable:
            break
        # drop the oldest turn, then whatever is left before the next user turn
        cut = {droppable[0]}
        for i in droppable[1:]:
            if msgs[i]["role"] == "user":
                break
            cut.add(i)
        dropped += len(cut)
        msgs = [m for i, m in enumerate(msgs) if i not in cut]
        tc = tokenize_chat(tok, msgs)
    if len(tc) <= max_len:
        return tc, dropped, False
    a, b = tc.spans[-1]
    if sum(tc.mask[a:b]) <= max_len:   # the answer fits: cut the prompt's oldest tokens
        keep = slice(len(tc) - max_len, None)
        return TokenizedChat(tc.ids[keep], tc.mask[keep]), dropped, False
    return TokenizedChat(tc.ids[:max_len], tc.mask[:max_len]), dropped, True


@dataclass
class LengthReport:
    """What fitting a split to `max_seq_length` did; in events, eval.json and the CLI."""

    max_seq_length: int
    source: str                       # "config" | "data (p95 of N train rows, ...)"
    tokens: dict[str, int]            # n, p50, p95, max of the measured lengths
    n: int = 0
    turns_dropped: int = 0            # conversations that lost earlier turns
    prompt_cut: int = 0               # conversations whose prompt start was cut
    completions_cut: int = 0          # conversations whose final answer was cut
    untrainable: int = 0              # rows with no user -> assistant exchange (left out)

    @property
    def cut_share(self) -> float:
        return self.completions_cut / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"max_seq_length": self.max_seq_length, "source": self.source,
                "tokens": self.tokens, "n": self.n, "turns_dropped": self.turns_dropped,
                "prompt_cut": self.prompt_cut, "completions_cut": self.completions_cut,
                "cut_share": round(self.cut_share, 4), "untrainable": self.untrainable}

    def line(self) -> str:
        t = self.tokens
        return (f"max_seq_length {self.max_seq_length} ({self.source}); tokens p50 "
                f"{t.get('p50', 0)}, p95 {t.get('p95', 0)}, max {t.get('max', 0)}; "
                f"{self.turns_dropped} of {self.n} conversations lose earlier turns, "
                f"{self.completions_cut} lose part of their final answer")


def prepare_examples(tok, rows: list[dict], fmt: str, max_len: int | None,
                     max_positions: int | None) -> tuple[list[dict], LengthReport]:
    """Tokenised, masked, length-fitted examples (`input_ids`, `labels`) and the report.

    Args:
        max_len: the user's `max_seq_length`, or None to take it from these rows' lengths.
    Rows without any trained token left (an answer cut to nothing) are dropped.
    """
    convs, untrainable = [], 0
    for r in rows:
        msgs = row_messages(r, fmt)
        if msgs:
            convs.append(msgs)
        else:
            untrainable += 1
    tokenized = [tokenize_chat(tok, m) for m in convs]
    tokens = length_summary(len(t) for t in tokenized)
    if max_len is None:
        max_len = default_max_seq_length([len(t) for t in tokenized], max_positions)
        source = source_line(len(tokenized), tokens.get("p95"), max_len, max_positions)
    else:
        source = "set in the config"
    report = LengthReport(max_seq_length=max_len, source=source, tokens=tokens, n=len(convs),
                          untrainable=untrainable)
    examples = []
    for msgs, tc in zip(convs, tokenized):
        fitted, dropped, cut = fit_to_length(tok, msgs, max_len, tc)
        report.turns_dropped += bool(dropped)
        report.prompt_cut += (not cut and len(tc) > max_len and not fitted.spans)
        report.completions_cut += cut
        if any(fitted.mask):
            examples.append({"input_ids": fitted.ids,
                             "labels": [t if k else -100 for t, k in zip(fitted.ids, fitted.mask)]})
    return examples, report
