"""LoRA / QLoRA training on an export: a causal-LM SFT head (TRL) and a sequence-classification
micro-model head, with runs on disk (events.jsonl, checkpoints, adapter, eval.json)."""

from trainer.config import DEVICES, HEADS, METHODS, TrainConfig
from trainer.runs import (latest_checkpoint, list_train_runs, read_events, run_dir, run_summary,
                          start_detached)
from trainer.train import resolve_base_model, train

__all__ = ["TrainConfig", "HEADS", "METHODS", "DEVICES", "train", "resolve_base_model",
           "read_events", "run_summary", "list_train_runs", "run_dir", "start_detached",
           "latest_checkpoint"]
