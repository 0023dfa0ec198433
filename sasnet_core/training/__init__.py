"""Training and fine-tuning SASNet as in the paper (the authors released no training code).

    from sasnet_core.training import TrainConfig, train, finetune, evaluate
    result = train(TrainConfig(data="../shared/data/street_b_layout", out="runs/b", steps=2000))

The same code serves ``sasnet train``, ``sasnet finetune`` and the GUI's one-click fine-tuning
(which runs ``sasnet finetune ... --log-json FILE`` and follows the JSON lines). Under
``torchrun`` the same call trains with DDP.
"""
import importlib

# The public names and the module that owns each. They are imported on first use (PEP 562), so
# importing one light module of this package (``training.config`` for the command line's
# defaults) does not load torch and the whole training stack with it.
_OWNERS = {
    "TrainConfig": "config", "FINETUNE_DEFAULTS": "config",
    "finetune": "finetuning", "finetune_config": "finetuning",
    "JsonLog": "jsonlog", "read_json_lines": "jsonlog",
    "TrainResult": "loop", "build_model": "loop", "train": "loop",
    "save_training_checkpoint": "resume",
    "StopRequest": "signals",
    "Precision": "steps", "make_optimizer": "steps", "precision_for": "steps",
    "train_step": "steps", "train_steps": "steps",
    "evaluate": "validation",
}

__all__ = ["FINETUNE_DEFAULTS", "JsonLog", "Precision", "StopRequest", "TrainConfig", "TrainResult",
           "build_model", "evaluate", "finetune", "finetune_config", "make_optimizer", "precision_for",
           "read_json_lines", "save_training_checkpoint", "train", "train_step", "train_steps"]


def __getattr__(name: str):
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{owner}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_OWNERS))
