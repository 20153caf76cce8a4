"""Padding-free packing of variable-length examples into fixed-capacity rows.

Padding a batch to its longest example wastes compute on pad tokens; packing several examples
into one row wastes none, provided attention cannot cross example boundaries. We emit
``position_ids`` that restart at 0 for every example: transformers' attention masking reads a
packed row from them (``find_packed_sequence_indices``) and builds a block-diagonal causal mask,
and flash-attention's varlen path reads the same ids. Labels of each example's first token are
never predicted from the previous example: the token that starts an example gets label -100 in
the shifted loss because its predecessor belongs to another example.

Throughput must count real tokens only: :attr:`PackedBatch.real_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

IGNORE = -100


@dataclass
class PackedBatch:
    """Rows ready for a causal LM: ``input_ids``, ``labels``, ``position_ids`` (``[rows, cap]``)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    real_tokens: int
    examples_per_row: list[int]

    @property
    def capacity_tokens(self) -> int:
        return int(self.input_ids.numel())

    @property
    def fill(self) -> float:
        """Share of the row capacity holding real tokens (1.0 = no padding at all)."""
        return self.real_tokens / max(self.capacity_tokens, 1)

    def as_model_inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "labels": self.labels, "position_ids": self.position_ids}


def plan_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing bin packing: lists of example indices, each fitting ``capacity``.

    Examples longer than ``capacity`` are truncated to it (they get a row of their own).
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        need = min(lengths[i], capacity)
        if need <= 0:
            continue
        for r, room in enumerate(free):
            if need <= room:
                rows[r].append(i)
                free[r] -= need
                break
        else:
            rows.append([i])
            free.append(capacity - need)
    return rows


def pack_examples(
    examples: Sequence[Sequence[int]],
    capacity: int,
    *,
    label_masks: Sequence[Sequence[bool]] | None = None,
    pad_id: int = 0,
) -> PackedBatch:
    """Pack token lists into rows of ``capacity`` tokens without padding between examples.

    Args:
        examples: token ids per example.
        capacity: tokens per row (the model's sequence length).
        label_masks: per example, True where the token is trained on (e.g. the response of an
            instruction pair); default all True. Masked tokens get label -100.
        pad_id: fills the tail of a row that no example fits; those positions are never counted.
    """
    if label_masks is not None and len(label_masks) != len(examples):
        raise ValueError("label_masks must have one entry per example")
    rows = plan_rows([len(e) for e in examples], capacity)
    ids = torch.full((len(rows), capacity), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), capacity), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), capacity), dtype=torch.long)
    real = 0
    for r, members in enumerate(rows):
        at = 0
        for i in members:
            toks = list(examples[i])[:capacity]
            n = len(toks)
            ids[r, at : at + n] = torch.tensor(toks, dtype=torch.long)
            lab = torch.tensor(toks, dtype=torch.long)
            if label_masks is not None:
                keep = torch.tensor(list(label_masks[i])[:n], dtype=torch.bool)
                lab[~keep] = IGNORE
            # The model shifts labels left by one: position `at` would be predicted from the
            # previous example's last token, so it is never a target.
            lab[0] = IGNORE
            labels[r, at : at + n] = lab
            pos[r, at : at + n] = torch.arange(n)
            at += n
            real += n
        # Unused tail: keep position ids increasing from 0 as one more (ignored) "example".
        if at < capacity:
            pos[r, at:] = torch.arange(capacity - at)
    return PackedBatch(ids, labels, pos, real, [len(m) for m in rows])


def pad_examples(examples: Sequence[Sequence[int]], *, pad_id: int = 0) -> PackedBatch:
    """The plain recipe: one example per row, right-padded to the longest (for comparison)."""
    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(examples), width), dtype=torch.long)
    real = 0
    for r, e in enumerate(examples):
        n = len(e)
        ids[r, :n] = torch.tensor(list(e), dtype=torch.long)
        labels[r, :n] = ids[r, :n]
        labels[r, 0] = IGNORE
        pos[r] = torch.arange(width)
        real += n
    return PackedBatch(ids, labels, pos, real, [1] * len(examples))
