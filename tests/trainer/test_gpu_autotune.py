"""Autotuner search on a fake memory/speed model, memory model fit, budget parsing."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError
from trainer.gpu import (GIB, Candidate, MemoryModel, NoFitError, Probe, TrialResult, autotune,
                         parse_bytes, training_overrides)

L = 32


class FakeGPU:
    """peak = static + b * (per_row + kept * per_layer) (+ overshoot); OOM above capacity.
    Speed: bigger micro-batches are more efficient, each checkpointed layer recomputes its
    forward (+1/3 of its time), liger makes everything 15% faster and 10% leaner."""

    def __init__(self, capacity=80 * GIB, overshoot=0.0):
        self.capacity = capacity
        self.overshoot = overshoot
        self.calls: list[tuple[Candidate, int]] = []

    def peak(self, c: Candidate) -> float:
        per_row, per_layer = 0.3 * GIB, 0.3 * GIB
        if c.liger:
            per_row, per_layer = per_row * 0.9, per_layer * 0.9
        return 5 * GIB + c.micro_batch * (per_row + (L - c.ckpt_layers) * per_layer) + self.overshoot

    def speed(self, c: Candidate) -> float:
        eff = c.micro_batch / (c.micro_batch + 1.5)
        return 12000 * eff / (1 + 0.33 * c.ckpt_layers / L) * (1.15 if c.liger else 1.0)

    def __call__(self, c: Candidate, steps: int) -> TrialResult:
        self.calls.append((c, steps))
        pk = self.peak(c)
        if pk > self.capacity:
            return TrialResult(c, static_bytes=5 * GIB, oom=True)
        return TrialResult(c, static_bytes=5 * GIB, peak_bytes=int(pk),
                           tokens_per_s=self.speed(c) if steps else None)


def test_parse_bytes():
    assert parse_bytes("24GiB") == 24 * GIB
    assert parse_bytes("1.5 GB") == 1_500_000_000
    assert parse_bytes("800MiB") == 800 * 1024**2
    assert parse_bytes(1234) == 1234
    for bad in ("24 parsecs", "", "-3GB", 0):
        with pytest.raises(ConfigError, match="memory_budget"):
            parse_bytes(bad)


def test_memory_model_fit_recovers_terms():
    true = MemoryModel(L, 4 * GIB, 0.25 * GIB, 0.5 * GIB)
    probes = [Probe(b, n, 4 * GIB, int(true.predict(b, n))) for b, n in ((1, L), (1, 0), (2, 16))]
    fit = MemoryModel.fit(probes, L)
    assert fit.per_row == pytest.approx(true.per_row, rel=1e-6)
    assert fit.per_row_layer == pytest.approx(true.per_row_layer, rel=1e-6)
    # b=4 at 24 GiB: 4 + 4*(0.25 + kept*0.5) <= 24  ->  kept <= 9.5  ->  ckpt >= 23
    assert fit.min_ckpt_layers(4, 24 * GIB) == 23
    assert fit.min_ckpt_layers(128, 24 * GIB) is None
    # a single checkpoint-everything probe gives a conservative model, not a crash
    one = MemoryModel.fit(probes[:1], L)
    assert one.per_row_layer == 0 and one.per_row == pytest.approx(0.25 * GIB, rel=1e-6)


def _feasible_best(gpu: FakeGPU, budget: float, eff: int, liger: bool) -> float:
    """Brute force over every (micro-batch, checkpointed layers) the search could pick."""
    best = 0.0
    for b in (d for d in range(1, eff + 1) if eff % d == 0):
        for n in range(L + 1):
            c = Candidate(b, eff // b, n, liger)
            if gpu.peak(c) <= 0.92 * budget:
                best = max(best, gpu.speed(c))
    return best


@pytest.mark.parametrize("budget_gib", [12, 24, 48])
def test_autotune_picks_fastest_fitting(budget_gib):
    gpu = FakeGPU()
    budget = budget_gib * GIB
    choice = autotune(gpu, num_layers=L, budget_bytes=budget, effective_batch=16)
    c = choice.candidate
    assert c.micro_batch * c.grad_accum == 16
    assert choice.peak_bytes <= budget
    assert gpu.peak(c) <= budget
    assert choice.tokens_per_s == pytest.approx(_feasible_best(gpu, budget, 16, False), rel=1e-9)
    # fewer checkpointed layers at this micro-batch would not fit the plan
    if c.ckpt_layers:
        assert gpu.peak(Candidate(c.micro_batch, c.grad_accum, c.ckpt_layers - 1)) > 0.92 * budget
    assert f"{c.ckpt_layers} of {L} layers" in choice.why and "tokens/s" in choice.why
    d = choice.to_dict()
    assert d["micro_batch"] == c.micro_batch and d["trials"] and d["why"] == choice.why
    assert training_overrides(choice)["gradient_accumulation_steps"] == c.grad_accum


def test_autotune_bigger_budget_is_not_slower():
    speeds = [autotune(FakeGPU(), num_layers=L, budget_bytes=g * GIB, effective_batch=16).tokens_per_s
              for g in (10, 16, 24, 40, 80)]
    assert speeds == sorted(speeds)
    assert speeds[-1] > speeds[0]


def test_autotune_times_switches_on_winning_shape():
    gpu = FakeGPU()
    choice = autotune(gpu, num_layers=L, budget_bytes=24 * GIB, effective_batch=16,
                      liger_options=(True, False))
    assert choice.candidate.liger is True
    assert any(not c.liger and s > 0 for c, s in gpu.calls)  # the alternative was measured
    assert "liger=False" in choice.why


def test_autotune_backs_off_when_measured_peak_overshoots():
    # The memory model is fitted from probes; timed trials then measure 6 GiB more (e.g.
    # allocator fragmentation), more than the 8% safety margin: it must add checkpointing.
    gpu = FakeGPU()
    real = gpu.__call__

    def trial(c, steps):
        r = real(c, steps)
        if steps and r.peak_bytes is not None:
            r.peak_bytes += int(6 * GIB)
        return r

    budget = 24 * GIB
    choice = autotune(trial, num_layers=L, budget_bytes=budget, effective_batch=16)
    assert choice.peak_bytes <= budget
    assert any(t.peak_bytes and t.peak_bytes > budget for t in choice.trials)  # it did overshoot


def test_autotune_oom_probe_falls_back_and_no_fit_raises():
    gpu = FakeGPU(capacity=20 * GIB)  # the no-checkpoint probe at b=1 (14.6 GiB) fits; b16 doesn't
    choice = autotune(gpu, num_layers=L, budget_bytes=20 * GIB, effective_batch=16)
    assert choice.peak_bytes <= 20 * GIB
    with pytest.raises(NoFitError, match="budget"):
        autotune(FakeGPU(), num_layers=L, budget_bytes=5 * GIB, effective_batch=16)


def test_autotune_time_limit_keeps_best_so_far():
    choice = autotune(FakeGPU(), num_layers=L, budget_bytes=24 * GIB, effective_batch=16,
                      time_limit_s=0.0)
    assert choice.tokens_per_s > 0
    assert "time limit" in choice.why


def test_autotune_drops_a_switch_whose_kernels_fail():
    gpu = FakeGPU()

    def trial(c, steps):
        if c.liger:
            return TrialResult(c, error="liger-kernel patch failed: ImportError: triton")
        return gpu(c, steps)

    choice = autotune(trial, num_layers=L, budget_bytes=24 * GIB, effective_batch=16,
                      liger_options=(True, False))
    assert choice.candidate.liger is False and choice.tokens_per_s > 0


def test_trainer_batches_uses_the_trainers_rows_and_collator():
    import torch

    from trainer.gpu import trainer_batches

    class Tok:
        pad_token_id = 0

    class FakeTrainer:
        train_dataset = [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9]}]
        processing_class = Tok()

        @staticmethod
        def data_collator(feats):
            width = max(len(f["input_ids"]) for f in feats)
            ids = torch.tensor([f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in feats])
            return {"input_ids": ids, "labels": ids.clone(), "attention_mask": (ids != 0).long(),
                    "extra": "dropped"}

    inputs, real = trainer_batches(FakeTrainer())(1, 3)  # rows 1, 0, 1 (wraps around)
    assert set(inputs) == {"input_ids", "labels", "attention_mask"}
    assert inputs["input_ids"].shape == (3, 3) and real == 2 + 3 + 2
