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
from sasnet_core.training.loop import (
    Precision,
    TrainResult,
    build_model,
    evaluate,
    make_optimizer,
    precision_for,
    save_training_checkpoint,
    train,
    train_one_epoch,
    train_step,
    train_steps,
)
from sasnet_core.training.signals import StopRequest

__all__ = [
    "TrainConfig", "TrainResult", "Precision", "JsonLog", "StopRequest",
    "train", "train_step", "train_steps", "train_one_epoch", "evaluate", "finetune",
    "finetune_config", "build_model", "make_optimizer", "precision_for",
    "save_training_checkpoint", "read_json_lines",
]
