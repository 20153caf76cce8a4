"""A linear memory model of one QLoRA training step, fitted from measured probes.

Peak memory of a decoder-only model trained with per-layer activation checkpointing is, to a
good approximation, linear in the micro-batch ``b`` and in the number of layers that are NOT
checkpointed (``L - n``)::

    peak(b, n) = static + b * (per_row + (L - n) * per_row_layer)

``static`` is what lives between steps (4-bit weights, LoRA weights, their gradients and AdamW
states); ``per_row`` is what one row costs with every layer checkpointed (the checkpointed layer
inputs, the loss head, one layer being recomputed); ``per_row_layer`` is what one row costs for
each layer whose activations are kept. The autotuner measures ``static`` directly and fits the
two per-row terms by least squares from a few one-step probes, so the model is measured, not
guessed; every later trial refines it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from pipelines.errors import ConfigError

GIB = 1024**3

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_bytes(value: str | int | float, *, field: str = "memory_budget") -> int:
    """Parse ``"24GiB"``, ``"22.5 GB"``, ``"800MiB"`` or a plain number of bytes.

    Raises:
        ConfigError: naming ``field`` and the value when it is not a positive size.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ConfigError(f"{field}: expected a positive size, got {value!r}")
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{field}: expected a size such as '24GiB' or '800MB', got {value!r}")
    size = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if size <= 0:
        raise ConfigError(f"{field}: expected a positive size, got {value!r}")
    return int(size)


def fmt_gib(nbytes: float | None) -> str:
    if nbytes is None:
        return "-"
    if abs(nbytes) < GIB / 4:
        return f"{nbytes / 1024**2:.2f} MiB"
    return f"{nbytes / GIB:.2f} GiB"


@dataclass(frozen=True)
class Probe:
    """One measured step: micro-batch, checkpointed layers, static and peak bytes."""

    micro_batch: int
    ckpt_layers: int
    static_bytes: int
    peak_bytes: int


@dataclass
class MemoryModel:
    """``peak(b, n) = static + b * (per_row + (L - n) * per_row_layer)``; see the module doc."""

    num_layers: int
    static_bytes: float
    per_row: float
    per_row_layer: float

    def predict(self, micro_batch: int, ckpt_layers: int) -> float:
        kept = self.num_layers - ckpt_layers
        return self.static_bytes + micro_batch * (self.per_row + kept * self.per_row_layer)

    def min_ckpt_layers(self, micro_batch: int, budget_bytes: float) -> int | None:
        """Fewest checkpointed layers whose predicted peak fits ``budget_bytes`` (None: none fit)."""
        for n in range(self.num_layers + 1):
            if self.predict(micro_batch, n) <= budget_bytes:
                return n
        return None

    @classmethod
    def fit(cls, probes: list[Probe], num_layers: int) -> "MemoryModel":
        """Least-squares fit of the two per-row terms (``static`` is the probes' mean).

        Needs at least one probe with every layer checkpointed and one with fewer; with a single
        probe the per-layer term is taken as 0 (a conservative model for checkpoint-everything).
        """
        if not probes:
            raise ValueError("MemoryModel.fit needs at least one probe")
        static = sum(p.static_bytes for p in probes) / len(probes)
        # y = b * per_row + b * (L - n) * per_row_layer  (2 unknowns, linear least squares)
        rows = [(p.micro_batch, p.micro_batch * (num_layers - p.ckpt_layers)) for p in probes]
        ys = [p.peak_bytes - p.static_bytes for p in probes]
        s11 = sum(a * a for a, _ in rows)
        s12 = sum(a * c for a, c in rows)
        s22 = sum(c * c for _, c in rows)
        t1 = sum(a * y for (a, _), y in zip(rows, ys))
        t2 = sum(c * y for (_, c), y in zip(rows, ys))
        det = s11 * s22 - s12 * s12
        if s22 == 0 or abs(det) < 1e-9 * max(s11 * s22, 1.0):
            # Only checkpoint-everything probes: per_row from them, per-layer term unknown.
            return cls(num_layers, static, t1 / s11, 0.0)
        per_row = (t1 * s22 - t2 * s12) / det
        per_layer = (s11 * t2 - s12 * t1) / det
        return cls(num_layers, static, max(per_row, 0.0), max(per_layer, 0.0))

    def to_dict(self) -> dict:
        return asdict(self)
