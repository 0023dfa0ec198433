"""Training and fine-tuning SASNet as in the paper (the authors released no training code).

    from sasnet_core.training import TrainConfig, train, finetune, evaluate
    result = train(TrainConfig(data="../shared/data/street_b_layout", out="runs/b", steps=2000))

The same code serves ``sasnet train``, ``sasnet finetune`` and the GUI's one-click fine-tuning
(which runs ``sasnet finetune ... --log-json FILE`` and follows the JSON lines). Under
``torchrun`` the same call trains with DDP.
"""
from sasnet_core.training.config import TrainConfig
from sasnet_core.training.finetune import finetune, finetune_config
from sasnet_core.training.jsonlog import JsonLog, read_json_lines
from sasnet_core.training.loop import TrainResult, build_model, train
from sasnet_core.training.resume import save_training_checkpoint
from sasnet_core.training.signals import StopRequest
from sasnet_core.training.steps import (
    Precision,
    make_optimizer,
    precision_for,
    train_step,
    train_steps,
)
from sasnet_core.training.validation import evaluate

__all__ = [
    "JsonLog",
    "Precision",
    "StopRequest",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "evaluate",
    "finetune",
    "finetune_config",
    "make_optimizer",
    "precision_for",
    "read_json_lines",
    "save_training_checkpoint",
    "train",
    "train_step",
    "train_steps",
]
