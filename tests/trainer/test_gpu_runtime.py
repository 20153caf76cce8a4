"""The bench/trainer runtime on CPU: NF4 build, the plain and tuned recipes give the same losses,
and a trial reports static/peak memory that grows when fewer layers are checkpointed."""

from __future__ import annotations

import pytest

pytest.importorskip("bitsandbytes")


@pytest.mark.slow
def test_plain_and_tuned_recipes_match_and_trials_measure_memory():
    from trainer.gpu.autotune import Candidate
    from trainer.gpu.runtime import (build_qlora_base, fixed_rows, make_trial, plain_recipe,
                                     train_steps, tuned_recipe)

    rows = fixed_rows(256, 32, seed=3)
    kw = dict(micro_batch=2, grad_accum=1, steps=2, warmup=1, device="cpu")
    plain = train_steps(plain_recipe(build_qlora_base("tiny", seq_len=32, device="cpu")), rows, **kw)
    model = tuned_recipe(build_qlora_base("tiny", seq_len=32, device="cpu"))
    trial = make_trial(model, rows, device="cpu")
    full = trial(Candidate(2, 1, 4), 0)
    none = trial(Candidate(2, 1, 0), 1)
    assert full.static_bytes > 0 and full.peak_bytes > full.static_bytes
    assert none.peak_bytes > full.peak_bytes  # keeping activations costs memory
    assert none.tokens_per_s and none.tokens_per_s > 0
    ours = train_steps(model, rows, **kw)  # trials did not move the weights
    assert len(ours.losses) == 2
    for a, b in zip(plain.losses, ours.losses):
        assert abs(a - b) < 2e-3, (plain.losses, ours.losses)
    assert plain.losses[1] != plain.losses[0]  # the optimizer did step
