"""A tiny local causal LM for tests and the demo: a Llama-architecture model built from a config,
with a byte-level BPE tokenizer trained on the workspace's own text.

Everything is saved with `save_pretrained` and reloaded through `AutoModelForCausalLM` /
`AutoTokenizer`, so the training code exercises the same loading path as a real model. The
weights are random: the point is a fast, honest training loop, not a useful assistant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

__all__ = ["SHAPES", "DEFAULT_CHAT_TEMPLATE", "train_tokenizer", "build_tiny_llama",
           "ensure_workspace_model"]

# A plain chat template, used for tokenizers that come without one (documented in training.md).
# The generation prompt is a strict prefix of the rendered assistant turn, which TRL checks when
# it masks the prompt out of the loss.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# name -> LlamaConfig keyword arguments. `tiny` has ~1M parameters with a 1k vocabulary;
# `tinyllama-1.1b` is the TinyLlama-1.1B shape (random init) for the GPU check.
SHAPES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
    "small": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048),
    "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4,
                           max_position_embeddings=2048, vocab_size=32000),
}
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


def build_tiny_llama(out_dir: str | Path, texts: Iterable[str], *, shape: str = "tiny",
                     vocab_size: int = 1024, seed: int = 0, dtype: str = "float32") -> Path:
    """Train a tokenizer on `texts`, build a random-init Llama of `shape`, save both to `out_dir`.

    A shape that names its own `vocab_size` (TinyLlama's 32000) keeps it even when the trained
    tokenizer is smaller, so parameter count and memory match the real model; the extra
    embedding rows are simply never used.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape not in SHAPES:
        raise ValueError(f"unknown tiny model shape {shape!r}; known: {', '.join(SHAPES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    dims = dict(SHAPES[shape])
    model_vocab = max(len(tok), dims.pop("vocab_size", 0))
    config = LlamaConfig(vocab_size=model_vocab, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False, **dims)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def ensure_workspace_model(ws, *, shape: str = "tiny") -> Path:
    """The workspace's tiny Llama at `W/models/tiny-llama`, built from its records on first use."""
    from pipelines.store import iter_records

    out = ws.subdir("models") / ("tiny-llama" if shape == "tiny" else f"llama-{shape}")
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    with ws.connect() as conn:
        texts = [t for r in iter_records(conn) for t in (r.text, r.prompt, r.response) if t]
    if not texts:
        raise ValueError(f"workspace {ws.path} has no records to train a tokenizer on")
    tmp = out.with_name(out.name + ".tmp")
    build_tiny_llama(tmp, texts, shape=shape)
    tmp.rename(out)
    return out
