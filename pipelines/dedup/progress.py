"""Progress of a dedup run, stage by stage, for a callback (the studio's `st.progress`).

The CLI shows tqdm bars, which draw only on a terminal; `run_dedup(..., on_progress=fn)` calls
`fn(StageProgress)` as each stage starts, advances and ends, whatever the output is. Stages come
in `STAGES` order, each ending with `fraction == 1.0` (a cached or switched-off stage reports
only its end, with a `note`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["STAGES", "StageProgress", "ProgressCallback", "StageReporter"]

STAGES = ("exact", "embed", "fuzzy", "semantic", "verify", "cluster", "write")
_UNITS = {"exact": "records", "embed": "records", "fuzzy": "records", "semantic": "records",
          "verify": "pairs", "cluster": "units", "write": "rows"}


@dataclass(frozen=True)
class StageProgress:
    """Where one stage stands: `done` of `total`, seconds since it started, and a note
    ("cached", "off")."""

    stage: str
    done: int
    total: int
    elapsed_s: float
    note: str = ""

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def overall(self) -> float:
        """The whole run's fraction: finished stages plus this one's share (for one bar)."""
        if self.stage not in STAGES:
            return self.fraction
        return (STAGES.index(self.stage) + self.fraction) / len(STAGES)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far; None before the first step and once done."""
        if self.done <= 0 or self.fraction >= 1.0:
            return None
        return self.elapsed_s * (self.total - self.done) / self.done

    def describe(self) -> str:
        """One line for a progress bar: 'verify: 1,200 / 33,446 pairs (4%), ETA 41 s'."""
        n = STAGES.index(self.stage) + 1 if self.stage in STAGES else 0
        head = f"{n}/{len(STAGES)} {self.stage}"
        if self.note:
            return f"{head}: {self.note}"
        text = (f"{head}: {self.done:,} / {self.total:,} {_UNITS.get(self.stage, '')}"
                f" ({self.fraction:.0%})")
        if self.eta_s is not None:
            text += f", ETA {_clock(self.eta_s)}"
        elif self.fraction >= 1.0:
            text += f" in {_clock(self.elapsed_s)}"
        return text


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


ProgressCallback = Callable[[StageProgress], None]


class StageReporter:
    """Turns `(stage, done, total)` updates into `StageProgress` calls; nothing without a
    callback. Updates closer than `interval_s` are dropped (a stage's start and end never)."""

    def __init__(self, callback: ProgressCallback | None, interval_s: float = 0.25):
        self.callback, self.interval_s = callback, interval_s
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._total: dict[str, int] = {}
        self._ended: set[str] = set()

    def update(self, stage: str, done: int, total: int) -> None:
        if self.callback is None or stage in self._ended:
            return
        now = time.perf_counter()
        first = stage not in self._started
        self._started.setdefault(stage, now)
        self._total[stage] = total
        if not first and done < total and now - self._last.get(stage, 0.0) < self.interval_s:
            return
        self._last[stage] = now
        if done >= total:
            self._ended.add(stage)
        self.callback(StageProgress(stage, done, total, now - self._started[stage]))

    def updater(self, stage: str) -> Callable[[int, int], None] | None:
        """`update` bound to one stage, for a loop's `on_progress(done, total)`."""
        if self.callback is None:
            return None
        return lambda done, total: self.update(stage, done, total)

    def end(self, stage: str, note: str = "") -> None:
        """The stage is over (fraction 1.0), with a note if it did no work ("cached", "off");
        nothing if it already reported its end."""
        if self.callback is None or stage in self._ended:
            return
        self._ended.add(stage)
        now = time.perf_counter()
        total = self._total.get(stage, 0)
        self.callback(StageProgress(stage, total, total, now - self._started.get(stage, now),
                                    note))
