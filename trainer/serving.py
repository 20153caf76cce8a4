"""Several adapters on one base: load each base model once, its adapters with peft's multi-adapter
support, and switch per request.

    pool = AdapterPool.from_registry(ws)          # every registered adapter that fits
    "".join(pool.generate("summary-sft-v0001", [{"role": "user", "content": "..."}]))
    pool.classify("topic-classifier-v0002", "a pipe burst ...")   # {"label", "scores"}

Causal-LM adapters share one causal LM (the base of the first one, or `lm_base`); an adapter
trained on another base is refused at load with the reason, listed in `pool.refused`. Classifier
adapters share one encoder per class count: peft keeps a classifier layer per adapter
(`modules_to_save`), and a layer of another shape cannot load over the base's, so a 2-class and
a 5-class classifier need two copies of the (small) encoder.

peft's active adapter is state of the model, so one lock serialises the forward passes: a request
switches the adapter, runs, and releases. Generation is a greedy (or sampled, with temperature)
token loop with the KV cache, yielding text as it grows; closing the iterator early (a client
that went away) stops it and releases the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pipelines.errors import ModelError

__all__ = ["AdapterPool", "PromptTooLong", "same_base"]


class PromptTooLong(ModelError):
    """The prompt does not fit the model's context window."""


def same_base(a: str | None, b: str | None) -> bool:
    """Two base-model strings name the same model: equal, or the same folder once resolved."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


@dataclass
class _Group:
    """One base model in memory and the adapters loaded onto it."""

    head: str
    base: str
    model: Any = None
    tok: Any = None
    window: int = 512
    adapters: dict[str, Any] = field(default_factory=dict)   # name -> ModelEntry


class AdapterPool:
    """Base models loaded once, adapters switched per request (see the module docstring)."""

    def __init__(self, *, device: str = "cpu", lm_base: str | None = None):
        self.device = device
        self.lm_base = lm_base
        self.lm: _Group | None = None
        self.encoders: dict[tuple[str, int], _Group] = {}
        self.refused: dict[str, str] = {}
        self._by_name: dict[str, _Group] = {}
        self.lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_registry(cls, ws, names: list[str] | None = None, **kw) -> "AdapterPool":
        """A pool with every registered adapter (or those named); refusals are kept, not raised,
        so one bad adapter does not stop the others from serving."""
        from trainer.registry import get_model, list_models

        entries = list_models(ws, kind="adapter")
        if names:
            entries = [get_model(ws, n, entries) for n in names]
        pool = cls(**kw)
        for e in entries:
            try:
                pool.load(e)
            except ModelError as exc:
                pool.refused[e.name] = str(exc)
        return pool

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def entry(self, name: str):
        group = self._group(name)
        return group.adapters[name]

    def load(self, entry) -> None:
        """Load one registered adapter onto its base (loading the base on first use).

        Raises:
            ModelError: the adapter's base is not the pool's base for its head, its head is not
                servable, or its folder does not load.
        """
        if entry.name in self._by_name:
            return
        if entry.head == "sft":
            group = self._lm_group(entry)
        elif entry.head == "classifier":
            group = self._encoder_group(entry)
        else:   # trainer.registry.SERVED_HEADS
            raise ModelError(f"model {entry.name!r} has head {entry.head!r}: only sft and "
                             f"classifier adapters are served")
        if not (Path(entry.path) / "adapter_config.json").is_file():
            raise ModelError(f"model {entry.name!r}: no adapter at {entry.path} "
                             f"(removed? see curate models list)")
        try:
            from peft import PeftModel

            if not isinstance(group.model, PeftModel):
                group.model = PeftModel.from_pretrained(group.model, entry.path,
                                                        adapter_name=entry.name)
            else:
                group.model.load_adapter(entry.path, adapter_name=entry.name)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"model {entry.name!r}: adapter at {entry.path} does not load on "
                             f"{group.base} ({str(exc).splitlines()[0][:200]})") from None
        group.model.eval()
        group.adapters[entry.name] = entry
        self._by_name[entry.name] = group

    def _lm_group(self, entry) -> _Group:
        if self.lm is None:
            base = self.lm_base or entry.base_model
            if not base:
                raise ModelError(f"model {entry.name!r} names no base model")
            self.lm = self._load_lm(base)
        if not same_base(entry.base_model, self.lm.base):
            raise ModelError(f"model {entry.name!r} was trained on {entry.base_model}, not on the "
                             f"served base {self.lm.base}: refused (serve it with "
                             f"--base-model {entry.base_model})")
        return self.lm

    def _load_lm(self, base: str) -> _Group:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from trainer.tiny import DEFAULT_CHAT_TEMPLATE

        try:
            model = AutoModelForCausalLM.from_pretrained(base).to(self.device)
            tok = AutoTokenizer.from_pretrained(base)
        except (OSError, ValueError) as exc:
            raise ModelError(f"base model {base!r} does not load "
                             f"({str(exc).splitlines()[0][:200]})") from None
        if tok.chat_template is None:
            tok.chat_template = DEFAULT_CHAT_TEMPLATE   # as training did (trainer.sft)
        window = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        return _Group("sft", base, model, tok, window)

    def _encoder_group(self, entry) -> _Group:
        classes = entry.classes or []
        if len(classes) < 2:
            raise ModelError(f"classifier {entry.name!r} lists no classes (its eval.json has none)")
        base = entry.base_model
        if not base:
            raise ModelError(f"model {entry.name!r} names no base model")
        for (b, k), g in self.encoders.items():
            if k == len(classes) and same_base(b, base):
                return g
        if self.encoders and not any(same_base(b, base) for b, _ in self.encoders):
            served = next(iter(self.encoders))[0]
            raise ModelError(f"model {entry.name!r} was trained on {base}, not on the served "
                             f"encoder {served}: refused")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=len(classes)).to(self.device)
            tok = AutoTokenizer.from_pretrained(base)
        except (OSError, ValueError) as exc:
            raise ModelError(f"encoder {base!r} does not load "
                             f"({str(exc).splitlines()[0][:200]})") from None
        window = min(int(getattr(tok, "model_max_length", 512) or 512),
                     int(getattr(model.config, "max_position_embeddings", 512) or 512))
        group = _Group("classifier", base, model, tok, window)
        self.encoders[(base, len(classes))] = group
        return group

    def _group(self, name: str) -> _Group:
        group = self._by_name.get(name)
        if group is None:
            if name in self.refused:
                raise ModelError(f"model {name!r} is not loaded: {self.refused[name]}")
            raise ModelError(f"no model {name!r}; loaded: {', '.join(self.names) or 'none'}")
        return group

    # -- requests ------------------------------------------------------------------------------
    def head(self, name: str) -> str:
        return self._group(name).head

    def prompt_ids(self, messages: list[dict[str, str]], name: str | None = None):
        """Token ids of a chat prompt on the LM's chat template (name None: the base)."""
        group = self._group(name) if name else self.lm
        if group is None or group.head != "sft":
            raise ModelError("no causal LM is loaded (register an sft adapter)")
        enc = group.tok.apply_chat_template(messages, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        return enc["input_ids"]

    def check_prompt(self, messages, name: str | None, max_tokens: int) -> tuple[int, int]:
        """(prompt tokens, tokens that may be generated); `PromptTooLong` when it cannot fit."""
        group = self._group(name) if name else self.lm
        ids = self.prompt_ids(messages, name)
        n = int(ids.shape[1])
        if n >= group.window:
            raise PromptTooLong(f"prompt is {n} tokens; the model's window is {group.window}")
        return n, min(max_tokens, group.window - n)

    def generate(self, name: str | None, messages: list[dict[str, str]], *,
                 max_tokens: int = 64, temperature: float = 0.0,
                 seed: int | None = None) -> Iterator[str]:
        """An iterator over the answer's new text, piece by piece; `name` None answers with the
        base model (every adapter disabled). The prompt is checked here, before anything is
        generated: `PromptTooLong` / `ModelError` come from this call, not from the iterator."""
        group = self._group(name) if name else self.lm
        if group is None or group.head != "sft":
            raise ModelError(f"model {name!r} is a classifier: use /v1/classify"
                             if name else "no causal LM is loaded (register an sft adapter)")
        _, budget = self.check_prompt(messages, name, max_tokens)
        return self._tokens(group, name, messages, budget, temperature, seed)

    def _tokens(self, group, name, messages, budget, temperature, seed) -> Iterator[str]:
        import contextlib

        import torch

        tok, model = group.tok, group.model
        eos_cfg = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = {tok.eos_token_id} | set(eos_cfg if isinstance(eos_cfg, list)
                                       else [] if eos_cfg is None else [eos_cfg])
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        # transformers 5 names the KV cache `cache` (in and out); 4.x called it past_key_values
        import inspect

        key = ("cache" if "cache" in inspect.signature(model.get_base_model().forward).parameters
               else "past_key_values")
        with self.lock:
            if name:
                model.set_adapter(name)
                ctx = contextlib.nullcontext()
            else:
                ctx = model.disable_adapter()
            with ctx, torch.no_grad():
                ids = self.prompt_ids(messages, name).to(self.device)
                past, new, shown = None, [], ""
                for _ in range(budget):
                    out = model(input_ids=ids, use_cache=True, **{key: past})
                    past = getattr(out, key)
                    logits = out.logits[0, -1]
                    if temperature and temperature > 0:
                        probs = torch.softmax(logits.float() / temperature, dim=-1)
                        nxt = int(torch.multinomial(probs, 1, generator=gen))
                    else:
                        nxt = int(logits.argmax())
                    if nxt in eos:
                        break
                    new.append(nxt)
                    text = tok.decode(new, skip_special_tokens=True)
                    if len(text) > len(shown) and not text.endswith("\ufffd"):
                        yield text[len(shown):]
                        shown = text
                    ids = torch.tensor([[nxt]], device=self.device)

    def classify(self, name: str, text: str) -> dict[str, Any]:
        """`{"label", "scores": {class: probability}}` of one text by classifier `name`."""
        import torch

        group = self._group(name)
        if group.head != "classifier":
            raise ModelError(f"model {name!r} is a generator: use /v1/chat/completions")
        classes = group.adapters[name].classes
        enc = group.tok(text, return_tensors="pt")
        n = int(enc["input_ids"].shape[1])
        if n > group.window:
            raise PromptTooLong(f"text is {n} tokens; the model's window is {group.window}")
        with self.lock:
            group.model.set_adapter(name)
            with torch.no_grad():
                logits = group.model(**{k: v.to(self.device) for k, v in enc.items()}).logits[0]
        probs = torch.softmax(logits, dim=-1).tolist()
        scores = {c: round(float(p), 4) for c, p in zip(classes, probs)}
        return {"label": max(scores, key=scores.get), "scores": scores}

    def memory_bytes(self) -> int:
        """Bytes of every parameter held (bases once, plus each adapter's weights)."""
        groups = ([self.lm] if self.lm else []) + list(self.encoders.values())
        return sum(p.numel() * p.element_size() for g in groups if g.model is not None
                   for p in g.model.parameters())
