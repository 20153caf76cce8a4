"""Memory-budget autotuner: the fastest training configuration that fits a memory budget.

The search is measured, not guessed. Given a trial function that runs a few training
micro-steps of one configuration and reports tokens/s and peak memory, :func:`autotune`

1. probes peak memory with one step at micro-batch 1, all layers checkpointed and none
   checkpointed (falling back to half when that runs out of memory), and fits a
   :class:`~trainer.gpu.memory.MemoryModel`;
2. for every micro-batch that divides the effective batch, predicts the fewest checkpointed
   layers that fit the budget (with a safety margin for allocator fragmentation);
3. times each such candidate for a few steps, keeps the ones whose *measured* peak fits, and
   refits the memory model after every trial;
4. for the optional switches (liger-kernel, attention implementation) times the winner's shape
   with each alternative;
5. returns the fastest fitting candidate as a :class:`TuneChoice` with a one-paragraph ``why``.

The effective batch (micro-batch x gradient accumulation) and hence the learning schedule stay
exactly as configured; only how each optimizer step is computed changes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

from .memory import MemoryModel, Probe, fmt_gib


@dataclass(frozen=True)
class Candidate:
    """One way to compute an optimizer step of ``micro_batch * grad_accum`` rows."""

    micro_batch: int
    grad_accum: int
    ckpt_layers: int
    liger: bool = False
    attn: str = "sdpa"

    def label(self, num_layers: int | None = None) -> str:
        ck = f"{self.ckpt_layers}" + (f"/{num_layers}" if num_layers is not None else "")
        return (
            f"b{self.micro_batch}x{self.grad_accum} ckpt {ck}"
            f"{' liger' if self.liger else ''} {self.attn}"
        )


@dataclass
class TrialResult:
    """What a trial measured. ``tokens_per_s`` is None for memory-only probes and failures."""

    candidate: Candidate
    static_bytes: int = 0
    peak_bytes: int | None = None
    tokens_per_s: float | None = None
    oom: bool = False
    error: str | None = None
    kind: str = "timed"  # "probe" | "timed"

    def fits(self, budget_bytes: int) -> bool:
        return (not self.oom and self.error is None and self.peak_bytes is not None
                and self.peak_bytes <= budget_bytes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["candidate"] = asdict(self.candidate)
        return d


TrialFn = Callable[[Candidate, int], TrialResult]
"""``trial(candidate, steps)``: run ``steps`` timed micro-steps (0 = one untimed memory probe)."""


@dataclass
class TuneChoice:
    """The autotuner's answer: what to run, what it measured, and why."""

    candidate: Candidate
    tokens_per_s: float
    peak_bytes: int
    predicted_peak_bytes: float
    budget_bytes: int
    num_layers: int
    effective_batch: int
    memory_model: MemoryModel
    trials: list[TrialResult] = field(default_factory=list)
    why: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "micro_batch": self.candidate.micro_batch,
            "grad_accum": self.candidate.grad_accum,
            "ckpt_layers": self.candidate.ckpt_layers,
            "num_layers": self.num_layers,
            "liger": self.candidate.liger,
            "attn": self.candidate.attn,
            "effective_batch": self.effective_batch,
            "tokens_per_s": self.tokens_per_s,
            "peak_bytes": self.peak_bytes,
            "predicted_peak_bytes": self.predicted_peak_bytes,
            "budget_bytes": self.budget_bytes,
            "memory_model": self.memory_model.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "why": self.why,
            "seconds": self.seconds,
        }


class NoFitError(RuntimeError):
    """Not even micro-batch 1 with every layer checkpointed fits the budget."""


def divisors(n: int, limit: int | None = None) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0 and (limit is None or d <= limit)]


def autotune(
    trial: TrialFn,
    *,
    num_layers: int,
    budget_bytes: int,
    effective_batch: int,
    max_micro_batch: int | None = None,
    liger_options: Sequence[bool] = (False,),
    attn_options: Sequence[str] = ("sdpa",),
    timed_steps: int = 2,
    safety: float = 0.92,
    time_limit_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> TuneChoice:
    """Pick the fastest configuration whose measured peak memory fits ``budget_bytes``.

    Args:
        trial: runs one configuration (see :data:`TrialFn`).
        num_layers: decoder layers that can be checkpointed individually.
        budget_bytes: the memory the run may use (peak allocated by the framework).
        effective_batch: rows per optimizer step; micro-batch x accumulation always equals it.
        max_micro_batch: largest micro-batch to consider (default: the effective batch).
        liger_options / attn_options: switch values to compare; the first is the default that
            the shape search runs with, the others are timed on the winning shape only.
        timed_steps: micro-steps timed per candidate (after one warm-up step inside ``trial``).
        safety: plan against ``safety * budget`` so allocator slack cannot push the peak over.
        time_limit_s: stop timing new candidates after this many seconds (keeps the best so far).
    """
    if effective_batch < 1 or num_layers < 1 or budget_bytes <= 0:
        raise ValueError("effective_batch, num_layers and budget_bytes must be positive")
    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    trials: list[TrialResult] = []
    L = num_layers
    base = Candidate(1, effective_batch, L, liger_options[0], attn_options[0])

    def run(c: Candidate, steps: int, kind: str) -> TrialResult:
        r = trial(c, steps)
        r.kind = kind
        trials.append(r)
        say(f"  trial {c.label(L)}: "
            + ("OOM" if r.oom else r.error or
               f"peak {fmt_gib(r.peak_bytes)}" +
               (f", {r.tokens_per_s:,.0f} tokens/s" if r.tokens_per_s else "")))
        return r

    def probes_for(c0: Candidate) -> list[Probe]:
        return [Probe(t.candidate.micro_batch, t.candidate.ckpt_layers, t.static_bytes, t.peak_bytes)
                for t in trials
                if t.peak_bytes is not None and not t.oom and t.error is None
                and (t.candidate.liger, t.candidate.attn) == (c0.liger, c0.attn)]

    # 1. memory probes (a switch value whose kernels fail is dropped, the next one is the base)
    first = run(base, 0, "probe")
    while first.error is not None and not first.oom and len(liger_options) > 1:
        say(f"  dropping liger={base.liger}: {first.error}")
        liger_options = [v for v in liger_options if v != base.liger]
        base = replace(base, liger=liger_options[0])
        first = run(base, 0, "probe")
    if not first.fits(budget_bytes):
        raise NoFitError(
            f"micro-batch 1 with all {L} layers checkpointed needs {fmt_gib(first.peak_bytes)}"
            f"{' (out of memory)' if first.oom else ''}, over the budget {fmt_gib(budget_bytes)}")
    for n in (0, L // 2):
        if n >= L:
            break
        if run(replace(base, ckpt_layers=n), 0, "probe").oom is False:
            break
    mm = MemoryModel.fit(probes_for(base), L)
    say(f"  memory model: static {fmt_gib(mm.static_bytes)}, per row {fmt_gib(mm.per_row)} "
        f"+ {fmt_gib(mm.per_row_layer)} per kept layer")

    # 2-3. shape search: per micro-batch, fewest checkpointed layers that fit; time each.
    plan = safety * budget_bytes
    timed: list[TrialResult] = []
    skipped: list[str] = []
    for b in sorted(divisors(effective_batch, max_micro_batch), reverse=True):
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s and timed:
            skipped.append(f"b{b} (time limit)")
            continue
        n = mm.min_ckpt_layers(b, plan)
        if n is None:
            skipped.append(f"b{b} (predicted {fmt_gib(mm.predict(b, L))} even fully checkpointed)")
            continue
        c = replace(base, micro_batch=b, grad_accum=effective_batch // b, ckpt_layers=n)
        r = run(c, timed_steps, "timed")
        # One step more checkpointing if the measured peak overshoots the budget.
        while not r.fits(budget_bytes) and c.ckpt_layers < L:
            c = replace(c, ckpt_layers=min(L, c.ckpt_layers + max(1, L // 8)))
            r = run(c, timed_steps, "timed")
        mm = MemoryModel.fit(probes_for(base), L)
        if r.fits(budget_bytes) and r.tokens_per_s:
            timed.append(r)
        # A smaller micro-batch needs fewer checkpointed layers; once none are needed, smaller
        # micro-batches only lose matmul efficiency.
        if r.fits(budget_bytes) and c.ckpt_layers == 0:
            break
    if not timed:
        raise NoFitError(f"no candidate fitted {fmt_gib(budget_bytes)}: "
                         + ", ".join(skipped or [t.candidate.label(L) for t in trials]))
    best = max(timed, key=lambda r: r.tokens_per_s or 0.0)

    # 4. switches, timed on the winning shape (memory re-checked: a switch changes it).
    switch_notes: list[str] = []
    for field_name, options in (("liger", liger_options[1:]), ("attn", attn_options[1:])):
        for value in options:
            c = replace(best.candidate, **{field_name: value})
            r = run(c, timed_steps, "timed")
            if r.fits(budget_bytes) and r.tokens_per_s:
                timed.append(r)
                switch_notes.append(f"{field_name}={value}: {r.tokens_per_s:,.0f} tokens/s")
                if r.tokens_per_s > (best.tokens_per_s or 0):
                    best = r
            else:
                switch_notes.append(f"{field_name}={value}: "
                                    + ("out of memory" if r.oom else r.error or
                                       f"peak {fmt_gib(r.peak_bytes)} over budget"))

    c = best.candidate
    runner_up = sorted((r for r in timed if r is not best), key=lambda r: -(r.tokens_per_s or 0))
    why = [
        f"micro-batch {c.micro_batch} x accumulation {c.grad_accum} (= effective batch "
        f"{effective_batch}), {c.ckpt_layers} of {L} layers checkpointed, "
        f"liger {'on' if c.liger else 'off'}, attention {c.attn}: measured "
        f"{best.tokens_per_s:,.0f} tokens/s at {fmt_gib(best.peak_bytes)} peak "
        f"within the {fmt_gib(budget_bytes)} budget."
    ]
    if runner_up:
        why.append("Next best: " + "; ".join(
            f"{r.candidate.label(L)} {r.tokens_per_s:,.0f} tokens/s" for r in runner_up[:3]) + ".")
    if c.ckpt_layers > 0:
        why.append(f"Checkpointing fewer layers at micro-batch {c.micro_batch} is predicted to need "
                   f"{fmt_gib(mm.predict(c.micro_batch, c.ckpt_layers - 1))}, over the plan "
                   f"{fmt_gib(plan)} ({safety:.0%} of the budget).")
    if switch_notes:
        why.append("Switches: " + "; ".join(switch_notes) + ".")
    if skipped:
        why.append("Not tried: " + ", ".join(skipped) + ".")
    return TuneChoice(
        candidate=c,
        tokens_per_s=float(best.tokens_per_s or 0.0),
        peak_bytes=int(best.peak_bytes or 0),
        predicted_peak_bytes=mm.predict(c.micro_batch, c.ckpt_layers),
        budget_bytes=budget_bytes,
        num_layers=L,
        effective_batch=effective_batch,
        memory_model=mm,
        trials=trials,
        why=" ".join(why),
        seconds=time.perf_counter() - t0,
    )
