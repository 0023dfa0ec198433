"""What a training run records as it goes: its position (step, epoch, time), the progress
records of its log and their history, validation figures and the best model so far, and the
checkpoints of its run folder. One object the run's step loop reports to."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sasnet_core.training.resume import BEST, LAST, save_training_checkpoint
from sasnet_core.training.steps import set_train_mode
from sasnet_core.training.validation import evaluate


@dataclass
class Position:
    """Where a run is. ``batch_in_epoch`` counts batches taken, so a checkpoint skips them on
    resume; ``elapsed_prev`` is the training time of the run before it was resumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_prev: float = 0.0
    train_time: float = 0.0
    status: str = "running"

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_prev + self.train_time


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class RunRecorder:
    def __init__(self, cfg, info, log, bar, pos: Position, *, net, model, optimizer, precision,
                 val_samples: list, run_meta: dict, save_run: bool, wall0: float):
        self.cfg, self.info, self.log, self.bar, self.pos = cfg, info, log, bar, pos
        self.net, self.model, self.optimizer, self.precision = net, model, optimizer, precision
        self.val_samples, self.run_meta, self.save_run, self.wall0 = val_samples, run_meta, save_run, wall0
        out = Path(cfg.out)
        self.last_path, self.best_path = out / LAST, out / BEST
        self.best: dict = {"mae": float("inf"), "mse": float("inf"), "step": None}
        self.before: dict = {}
        self.figures: dict = {}
        self.history: list[dict] = []
        self.last_val_step: int | None = None
        self._window: list[dict] = []
        self._t_window = time.perf_counter()

    def start_clock(self) -> float:
        """The steps begin now: the time limit, the ETA and the first rate count from here."""
        self.wall0 = self._t_window = time.perf_counter()
        return self.wall0

    def restore_best(self, best: dict) -> None:
        self.best = dict(best)
        if self.best.get("mae") is None:
            self.best["mae"] = float("inf")

    @property
    def has_best(self) -> bool:
        return self.best.get("step") is not None

    # -- records -------------------------------------------------------------------------
    def metadata(self, figures: dict | None = None) -> dict:
        p = self.pos
        m = {**self.run_meta, "steps": p.step, "epoch": p.epoch, "trained": _now(), "status": p.status}
        if figures:
            m.update({"val_mae": figures.get("mae"), "val_mse": figures.get("mse")})
        if self.before:
            m.update({"val_mae_before": self.before.get("mae"), "val_mse_before": self.before.get("mse")})
        if self.has_best:
            m.update({"best_val_mae": self.best["mae"], "best_val_mse": self.best["mse"],
                      "best_step": self.best["step"]})
        return m

    def on_step(self, step: int, parts: dict, seconds: float) -> None:
        """After each step: a progress record every ``log_every`` steps (and the first and last),
        a validation every ``val_every``."""
        cfg = self.cfg
        self.pos.step = step
        self.pos.train_time += seconds
        self._window.append(parts)
        if step % cfg.log_every == 0 or step == cfg.steps or step == 1:
            self._record_window(step)
        if self.val_samples and cfg.val_every and step % cfg.val_every == 0 and step < cfg.steps:
            self.figures = self.validate()
            self.last_val_step = step
            self.save_last(self.figures)

    def _record_window(self, step: int) -> None:
        cfg, window = self.cfg, self._window
        span = time.perf_counter() - self._t_window
        self._t_window = time.perf_counter()
        mean = {key: sum(p[key] for p in window) / len(window) for key in window[0]}
        rate = len(window) * cfg.images_per_step * self.info.world_size / max(span, 1e-9)
        sec_per_step = span / len(window)
        eta = (cfg.steps - step) * sec_per_step
        if cfg.max_minutes is not None:
            eta = min(eta, max(cfg.max_minutes * 60 - (time.perf_counter() - self.wall0), 0.0))
        record = {"step": step, "steps": cfg.steps, "epoch": self.pos.epoch, "loss": mean["total"],
                  "den": mean["den"], "conf": mean["conf"], "pra": mean["pra"],
                  "hard_fraction": mean["hard_fraction"], "lr": self.optimizer.param_groups[0]["lr"],
                  "images_per_s": rate, "crops_per_s": rate * cfg.crops_per_image,
                  "sec_per_step": sec_per_step, "elapsed_s": self.pos.elapsed_s, "eta_s": eta}
        self.history.append(record)
        self.log.write("step", **record)
        self.bar.show(step, f"loss {mean['total']:.4g} {rate:.1f} img/s", eta_s=eta)
        self._window = []

    # -- validation and checkpoints ------------------------------------------------------
    def _evaluate(self) -> dict:
        return evaluate(self.net, self.val_samples, self.info.device, precision=self.precision,
                        dist_info=self.info)

    def evaluate_before(self) -> None:
        """Validate once before the first step (fine-tuning reports MAE before and after)."""
        if not self.val_samples:
            return
        self.before.update(self._evaluate())
        b = self.before
        self.log.write("val", phase="before", step=self.pos.step, mae=b["mae"], mse=b["mse"], n=b["n"])
        self.bar.message(f"before training: val MAE {b['mae']:.2f} MSE {b['mse']:.2f}")

    def validate(self, phase: str = "during") -> dict:
        figures = self._evaluate()
        set_train_mode(self.net, self.cfg.freeze_stages, self.cfg.keeps_bn_stats)
        step, best = self.pos.step, self.best
        is_best = figures["mae"] < best["mae"]
        if is_best:
            best.update(mae=figures["mae"], mse=figures["mse"], step=step)
            if self.info.is_main and self.save_run:
                # The run goes on after this snapshot: it is the run's best so far, not "running".
                save_training_checkpoint(self.best_path, self.model,
                                         {**self.metadata(figures), "status": "best"})
                self.log.write("checkpoint", kind="best", path=str(self.best_path), step=step)
        self.log.write("val", phase=phase, step=step, mae=figures["mae"], mse=figures["mse"],
                       n=figures["n"], best_mae=best["mae"], best_step=best["step"], is_best=is_best)
        self.bar.message(f"step {step}: val MAE {figures['mae']:.2f} MSE {figures['mse']:.2f}"
                         + (" (best)" if is_best else ""))
        return figures

    def validate_final(self) -> None:
        """The figures a run ends with: a last validation unless the last step had one (or no
        step was taken after the evaluation before training, which still stands)."""
        if not self.val_samples or self.last_val_step == self.pos.step:
            return
        self.figures = dict(self.before) if self.pos.step == 0 and self.before else self.validate("final")

    def save_last(self, figures: dict | None = None) -> None:
        if not (self.info.is_main and self.save_run):
            return
        p = self.pos
        state = {"optimizer": self.optimizer.state_dict(), "step": p.step, "epoch": p.epoch,
                 "batch_in_epoch": p.batch_in_epoch, "best": dict(self.best),
                 "elapsed_s": p.elapsed_s, "config": self.cfg.to_dict(),
                 "torch_rng": torch.get_rng_state()}  # crops are drawn from torch's RNG
        save_training_checkpoint(self.last_path, self.model, self.metadata(figures), state)
        self.log.write("checkpoint", kind="last", path=str(self.last_path), step=p.step)

    def end_event(self, out_path, best_ck, stop_reason) -> None:
        f, best = self.figures, self.best
        self.log.write("end", status=self.pos.status, step=self.pos.step,
                       checkpoint=str(out_path) if out_path else None,
                       best_checkpoint=str(best_ck) if best_ck else None,
                       mae=f.get("mae"), mse=f.get("mse"),
                       best_mae=best["mae"] if self.has_best else None,
                       best_mse=best["mse"] if self.has_best else None,
                       mae_before=self.before.get("mae"), mse_before=self.before.get("mse"),
                       elapsed_s=self.pos.elapsed_s, stop_reason=stop_reason)



