"""Padding-free packing: row planning, labels at boundaries, real-token counts, and that a packed
row gives the same logits as each example alone (attention does not cross examples)."""

from __future__ import annotations

import pytest
import torch

from trainer.gpu import pack_examples, pad_examples, plan_rows
from trainer.gpu.packing import IGNORE


def test_plan_rows_places_each_example_once_within_capacity():
    lengths = [7, 3, 9, 1, 4, 4, 6, 10, 2]
    rows = plan_rows(lengths, 10)
    placed = sorted(i for r in rows for i in r)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 10 for r in rows)
    assert len(rows) == 5  # 46 tokens need at least 5 rows of 10; first-fit decreasing finds 5
    with pytest.raises(ValueError):
        plan_rows([1], 0)


def test_pack_examples_counts_real_tokens_and_masks_boundaries():
    ex = [[11, 12, 13], [21, 22, 23, 24, 25], [31, 32]]
    pb = pack_examples(ex, 8, pad_id=0)
    assert pb.real_tokens == 10 and pb.capacity_tokens == 16
    assert pb.fill == pytest.approx(10 / 16)
    for r in range(pb.input_ids.shape[0]):
        ids, lab, pos = pb.input_ids[r].tolist(), pb.labels[r].tolist(), pb.position_ids[r].tolist()
        starts = [j for j, p in enumerate(pos) if p == 0]
        for j in starts:  # a new example (or the pad tail) never is a target of the previous one
            assert lab[j] == IGNORE
        for j, (t, l) in enumerate(zip(ids, lab)):
            assert l in (IGNORE, t)
    assert (pb.labels != IGNORE).sum().item() == 10 - 3  # every token but each example's first
    # the padded recipe counts the same real tokens in more capacity
    pad = pad_examples(ex)
    assert pad.real_tokens == 10 and pad.capacity_tokens == 15


def test_pack_examples_label_masks():
    ex = [[1, 2, 3, 4], [5, 6, 7]]
    masks = [[False, False, True, True], [False, True, True]]
    pb = pack_examples(ex, 8, label_masks=masks)
    kept = pb.labels[pb.labels != IGNORE].tolist()
    assert sorted(kept) == [3, 4, 6, 7]
    with pytest.raises(ValueError):
        pack_examples(ex, 8, label_masks=masks[:1])


def test_packed_row_matches_separate_examples():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, max_position_embeddings=64)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).eval()
    ex = [torch.randint(1, 64, (5,)).tolist(), torch.randint(1, 64, (7,)).tolist()]
    pb = pack_examples(ex, 16)
    assert pb.input_ids.shape[0] == 1
    with torch.no_grad():
        # no cache: transformers reads packing from position_ids only in a training-style call
        packed = model(input_ids=pb.input_ids, position_ids=pb.position_ids, use_cache=False).logits[0]
        at = 0
        for i in pb_order(pb, ex):
            alone = model(input_ids=torch.tensor([ex[i]])).logits[0]
            n = len(ex[i])
            torch.testing.assert_close(packed[at:at + n], alone, atol=1e-5, rtol=1e-4)
            at += n


def pb_order(pb, ex):
    """Example indices in the order they were laid into the (single) row."""
    row = pb.input_ids[0].tolist()
    order, at = [], 0
    remaining = list(range(len(ex)))
    while remaining:
        i = next(i for i in remaining if row[at:at + len(ex[i])] == ex[i])
        order.append(i)
        remaining.remove(i)
        at += len(ex[i])
    return order
