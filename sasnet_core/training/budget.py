"""A time budget for a whole fine-tuning run, set-up and final evaluation included.

The loop's own ``max_minutes`` counts only its training steps; a person who asks for 3 minutes
means from the click to the new model. Measured on CPU (tiny model, 30 images, 30 s asked) the
run took 40 s: 3.4 s starting up (imports, data, model), 4.3 s scoring the held-out images
before training, one step past the limit (1.3 s), 2 s scoring them after and the save; with the
full model and larger held-out images the two evaluations alone made 3 minutes last 4 1/2.

So the clock starts when the run is asked for (``started_at``, Unix time: the app passes the
moment of the click to the child process) and the loop is asked to stop (through the stop request
it polls before every step) once the time left would not cover one more step (the slowest of the
last few; before the first, a guess scaled from the evaluation), the final evaluation (as long as
the one before training, which is measured, plus a margin) and the save (estimated from the
checkpoint's size). A budget too small for even one step ends the run at step 0, and the service
then keeps no model.

So that a person is told before the click rather than after the run, ``minimum_budget`` adds up
the same parts for this model on this machine: the trainer's start, both evaluations, one step and
the save, from one timed forward pass of the model (``measure_speed``, once per model and device
in a process). The service refuses a budget below it (``FineTuneRun.prepare``).
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sasnet_core.engine.choice import choose_device
from sasnet_core.training.signals import StopRequest
from sasnet_core.training.steps import precision_for
from sasnet_core.util.errors import SettingsError
from sasnet_core.util.progress import human_duration
from sasnet_core.weights.registry import ModelRegistry, load_model

TIME_LIMIT = "time_limit"  # the stop reason, and the run's status, when the budget ends a run
SAVE_BYTES_PER_S = 100e6  # a conservative disk: writing and fsyncing the new checkpoint
EXIT_S = 1.0  # the summary and the interpreter's exit after the save (0.8-1.3 s on a busy CPU)
EVAL_MARGIN = 1.2  # the final evaluation, timed by the one before training, may run a bit slower
# The trainer's start before its model is loaded: interpreter, torch, the data (3.4 s measured for a
# tiny model on 2 cores, more while the app counts beside it).
STARTUP_S = 5.0
# The minimum is estimated from one timed forward pass; a busy machine runs slower than that.
MINIMUM_MARGIN = 1.3
PROBE_SIDE = 256  # the square input the forward pass is timed on


class TimeBudget(StopRequest):
    """A :class:`StopRequest` that also stops the loop in time to finish within ``minutes``."""

    def __init__(self, stop_file: str | os.PathLike | None = None, minutes: float | None = None,
                 started_at: float | None = None, save_bytes: int = 0, step_per_eval: float = 0.0):
        super().__init__(stop_file)
        # Before the first step its time is guessed from the evaluation before training:
        # ``step_per_eval`` is one step's work over that evaluation's (see ``step_work_ratio``).
        self.step_per_eval = step_per_eval
        self.started_at = time.time() if started_at is None else float(started_at)
        self.deadline = None if minutes is None else self.started_at + 60.0 * float(minutes)
        self.save_s = save_bytes / SAVE_BYTES_PER_S + EXIT_S
        self.eval_s = 0.0
        self._start_record: float | None = None
        self._polls: list[float] = []

    def observe(self, event: str, fields: dict) -> None:
        """Called with every progress record: times the evaluation before training."""
        now = time.time()
        if event == "start":
            self._start_record = now
        elif event == "val" and fields.get("phase") == "before" and self._start_record is not None:
            self.eval_s = now - self._start_record

    def step_s(self) -> float:
        """The time of the next step: the slowest of the last three, or the guess before any."""
        recent = self._polls[-4:]
        gaps = [b - a for a, b in zip(recent, recent[1:])]
        return max(gaps) if gaps else self.eval_s * self.step_per_eval

    def reserve_s(self) -> float:
        """Time still needed after the next step: final evaluation and save."""
        return self.eval_s * EVAL_MARGIN + self.save_s

    @property
    def requested(self) -> bool:
        if StopRequest.requested.fget(self):
            return True
        if self.deadline is None:
            return False
        now = time.time()
        self._polls.append(now)  # the loop polls once per step: the gaps are step times
        del self._polls[:-8]
        if now + self.step_s() + self.reserve_s() >= self.deadline:
            self.reason = TIME_LIMIT
            return True
        return False


def step_work_ratio(images_per_step: int, crops_per_image: int, crop_size: int,
                    eval_pixels: int) -> float:
    """One training step's work over one evaluation of ``eval_pixels`` pixels: pixels through the
    network, the backward pass counted as twice the forward one. On a CPU it predicted a first
    step of 10.6 s from a 2.7 s evaluation; the step took 10.4 s."""
    if eval_pixels <= 0:
        return 0.0
    return 3.0 * images_per_step * crops_per_image * crop_size ** 2 / eval_pixels


class ObservedLog:
    """A progress log that also shows each record to the budget (everything else is the log's)."""

    def __init__(self, log, budget: TimeBudget):
        self._log, self._budget = log, budget

    def write(self, event: str, **fields) -> None:
        self._budget.observe(event, fields)
        self._log.write(event, **fields)

    def __getattr__(self, name):
        return getattr(self._log, name)


@dataclass(frozen=True)
class MachineSpeed:
    """How fast this machine runs one model: loading its checkpoint, and a forward pass per pixel."""

    load_s: float
    forward_s_per_pixel: float


@dataclass(frozen=True)
class MinimumBudget:
    """The least time a whole run needs: the trainer's start (with loading the model), the
    held-out evaluation before training and after it, one step and the save."""

    startup_s: float
    eval_s: float  # one evaluation of the held-out images
    step_s: float
    save_s: float

    @property
    def total_s(self) -> float:
        return MINIMUM_MARGIN * (self.startup_s + self.eval_s * (1 + EVAL_MARGIN) + self.step_s + self.save_s)

    @property
    def minutes(self) -> float:
        """The minimum in minutes, rounded up to a tenth (what the app's field shows)."""
        return math.ceil(self.total_s / 6.0 - 1e-9) / 10.0

    def allows(self, minutes: float | None) -> bool:
        return minutes is None or minutes + 1e-9 >= self.minutes

    def describe(self) -> str:
        """"1.5 min (start 9 s, held-out MAE before and after 40 s, one step 25 s, saving 3 s)"."""
        parts = [f"start {human_duration(self.startup_s)}"]
        if self.eval_s:
            parts.append(f"held-out MAE before and after {human_duration(self.eval_s * (1 + EVAL_MARGIN))}")
        parts += [f"one step {human_duration(self.step_s)}", f"saving {human_duration(self.save_s)}"]
        return f"{self.minutes:g} min ({', '.join(parts)}, and a margin)"


def minimum_budget(speed: MachineSpeed, *, images_per_step: int, crops_per_image: int, crop_size: int,
                   eval_pixels: int, save_bytes: int) -> MinimumBudget:
    """The minimum for a run that scores ``eval_pixels`` held-out pixels before and after, on a
    machine of ``speed`` (the same parts ``TimeBudget`` keeps time for)."""
    per_pixel = speed.forward_s_per_pixel
    step_pixels = images_per_step * crops_per_image * crop_size ** 2
    return MinimumBudget(startup_s=STARTUP_S + speed.load_s, eval_s=eval_pixels * per_pixel,
                         step_s=3.0 * step_pixels * per_pixel,  # forward and backward, as step_work_ratio
                         save_s=save_bytes / SAVE_BYTES_PER_S + EXIT_S)


class BudgetTooSmallError(SettingsError):
    """A minutes budget below the minimum of this model on this machine (``minimum``)."""

    def __init__(self, minutes: float, minimum: MinimumBudget, shorter: str = "a number of steps"):
        """``shorter``: how a person runs for less time, in the words of where they asked."""
        self.minutes, self.minimum = minutes, minimum
        super().__init__(f"a budget of {minutes:g} min is too short for this model on this machine: it "
                         f"needs at least {minimum.describe()}; give it at least {minimum.minutes:g} "
                         f"minutes, or {shorter}")


_speeds: dict[tuple, MachineSpeed] = {}
_speeds_lock = threading.Lock()


def measure_speed(weights: str | os.PathLike, device: str = "auto", precision: str = "auto") -> MachineSpeed:
    """Load ``weights`` (a file or a registered name) and time a forward pass as evaluation runs
    it; remembered per file (size and time) and device in this process, so asking again is free."""
    import torch

    path = ModelRegistry().resolve(weights)
    stat = Path(path).stat()
    dev = choose_device(device)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime, str(dev), str(precision))
    with _speeds_lock:
        if key in _speeds:
            return _speeds[key]
    t0 = time.perf_counter()
    model, _info = load_model(path, device="cpu")
    model = model.to(dev).eval()
    load_s = time.perf_counter() - t0
    prec = precision_for(dev, str(precision))
    x = torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE, device=dev)
    times = []
    with torch.no_grad():
        for _ in range(2):  # the first pass also allocates; the second is the one that counts
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=prec.dtype, enabled=prec.autocast):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t0)
    speed = MachineSpeed(load_s, min(times) / PROBE_SIDE ** 2)
    with _speeds_lock:
        _speeds[key] = speed
    return speed
