"""Progress of long work: the bar on stderr of long CLI loops (eval, count, convert), the ETA
and time formats every surface shows, and the tile events of one large image.

On a terminal the bar redraws one line with done/total, rate and ETA. When the stream is not a
terminal (a log file, a pipe, CI) it stays quiet and writes one final summary line, so logs
are not flooded; ``heartbeat_s`` adds a line now and then, for work long enough that silence
would look like a hang. ``SASNET_PROGRESS=1`` forces the live bar, ``=0`` silences it completely,
as does ``enabled=False``. ``StepBar`` is the training run's use of it: steps, with the ETA the
run measures, and a line every 30 s off a terminal.

Counting one image that is split into tiles takes minutes for a photo of tens of megapixels, so
the predictor reports each finished tile (``TileProgress``) to a listener bound to the counting
thread (``tile_listener``), as the cancel token is bound: the CLI draws it as a bar, the app shows
it in the file list and the counts panel, and the model code needs no extra argument.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable


def clock_duration(seconds: float | None) -> str:
    """A duration on a terminal bar: "04:05", "1:02:03"; "--:--" when unknown (None, NaN, inf)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def human_duration(seconds: float | None) -> str:
    """A duration as a person reads it in a window: "45 s", "3 min 05 s", "1 h 02 min"; "–" when
    unknown (``None``, NaN or infinite)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "\u2013"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def eta_seconds(done: int, total: int, elapsed_s: float) -> float:
    """Time left at the mean rate so far; infinite before the first unit is done."""
    if done <= 0 or elapsed_s <= 0:
        return float("inf")
    return max(0.0, (total - done) * elapsed_s / done)


@dataclass(frozen=True)
class TileProgress:
    """One large image counted tile by tile: ``done`` of ``total`` tiles after ``elapsed_s``;
    ``item``: the image's place in the batch the predictor was given; ``size``: (width, height)
    of the image as it is counted (after any downscaling)."""

    done: int
    total: int
    elapsed_s: float
    item: int = 0
    size: tuple[int, int] = (0, 0)

    @property
    def megapixels(self) -> float:
        return self.size[0] * self.size[1] / 1e6

    @property
    def eta_s(self) -> float:
        return eta_seconds(self.done, self.total, self.elapsed_s)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def text(self) -> str:
        """"tile 12/768 \u00b7 3 min 20 s left" (before the first tile: "tile 0/768")."""
        left = f" \u00b7 {human_duration(self.eta_s)} left" if self.done and self.done < self.total else ""
        return f"tile {self.done}/{self.total}{left}"


TileListener = Callable[[TileProgress], None]
_bound = threading.local()


@contextlib.contextmanager
def tile_listener(listener: TileListener | None):
    """Send the tile events of this thread's counting to ``listener`` while the block runs."""
    previous = getattr(_bound, "listener", None)
    _bound.listener = listener
    try:
        yield
    finally:
        _bound.listener = previous


def report_tiles(done: int, total: int, elapsed_s: float, item: int = 0,
                 size: tuple[int, int] = (0, 0)) -> None:
    """Called by the predictor before the first tile and after each one (a no-op unbound)."""
    listener = getattr(_bound, "listener", None)
    if listener is not None:
        listener(TileProgress(done, total, elapsed_s, item, size))


class Progress:
    def __init__(self, total: int | None, desc: str = "", stream=None, enabled: bool | None = None,
                 unit: str = "it", min_interval: float = 0.1, heartbeat_s: float | None = None,
                 leave: bool = True):
        """``heartbeat_s``: off a terminal, also write a line each time this much has passed
        (the first one after ``heartbeat_s``). ``leave=False``: a bar that only matters while
        its work runs (one image's tiles) leaves nothing behind on a terminal, and off one
        writes its final line only where it wrote a heartbeat."""
        self.stream = stream if stream is not None else sys.stderr
        env = os.environ.get("SASNET_PROGRESS")
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = (env == "1" or (env != "0" and tty)) if enabled is None else bool(enabled)
        # enabled=False (e.g. --no-progress) means no output at all, not even the final line.
        self.final_line = env != "0" and enabled is not False
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self.start, self._last = 0, time.monotonic(), 0.0
        self.min_interval = min_interval
        self.heartbeat_s, self.leave = heartbeat_s, leave
        self._beats = 0
        self.closed = False

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            frac = min(self.n / self.total, 1.0)
            bar = "#" * int(frac * 20) + "-" * (20 - int(frac * 20))
            eta = eta_seconds(self.n, self.total, elapsed)
            return (f"{head}[{bar}] {self.n}/{self.total} {rate:.2f} {self.unit}/s "
                    f"elapsed {clock_duration(elapsed)} ETA {clock_duration(eta)}")
        return f"{head}{self.n} {self.unit} {rate:.2f} {self.unit}/s elapsed {clock_duration(elapsed)}"

    def update(self, n: int = 1, postfix: str = "") -> None:
        self.n += n
        now = time.monotonic()
        if not self.live:
            if (self.final_line and self.heartbeat_s is not None
                    and now - self.start >= self.heartbeat_s * (self._beats + 1)):
                self._beats = int((now - self.start) // self.heartbeat_s)
                self.stream.write(self._line() + (f" {postfix}" if postfix else "") + "\n")
                self.stream.flush()
            return
        if now - self._last >= self.min_interval or (self.total and self.n >= self.total):
            self._last = now
            self.stream.write("\r" + self._line() + (f" {postfix}" if postfix else "") + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.live:
            self.stream.write("\r" + self._line() + "\x1b[K\n" if self.leave else "\r\x1b[K")
        elif self.final_line and (self.leave or self._beats):
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StepBar(Progress):
    """The bar of a run counted in steps that measures its own ETA (training): on a terminal one
    line redrawn in place, "train [######..] 120/500  24% eta 03:10 loss 0.41 52.0 img/s"; off a
    terminal the same line every ``every_s`` seconds and when forced (the last step), so a log
    file stays readable. Messages (validation figures) go between the redraws."""

    def __init__(self, total: int, desc: str = "train", enabled: bool = True, stream=None,
                 width: int = 24, every_s: float = 30.0):
        super().__init__(max(int(total), 1), desc, stream, enabled=None if enabled else False,
                         unit="step", min_interval=0.0, heartbeat_s=every_s)
        self.enabled = self.final_line  # off: --no-progress, another rank, or SASNET_PROGRESS=0
        # Messages (validation figures, where the model was saved) are what happened, not progress:
        # SASNET_PROGRESS=0 silences the bar, never them; --no-progress and other ranks do.
        self.messages = bool(enabled)
        self.width, self.every_s = width, every_s
        self.text, self.eta_s = "", None

    def _line(self) -> str:
        frac = min(max(self.n / self.total, 0.0), 1.0)
        fill = int(round(frac * self.width))
        return (f"{self.desc} [{'#' * fill}{'.' * (self.width - fill)}] {self.n}/{self.total} "
                f"{100 * frac:3.0f}% eta {clock_duration(self.eta_s)} {self.text}")

    def show(self, done: int, text: str = "", eta_s: float | None = None, force: bool = False) -> None:
        """``done`` steps of ``total``, with the run's own ``text`` and ETA."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.live and not force and now - self._last < self.every_s:
            return
        self._last = now
        self.n, self.text, self.eta_s = done, text, eta_s
        line = self._line()
        self.stream.write("\r" + line[:200].ljust(80) if self.live else line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.messages:
            self.stream.write(("\n" if self.live and self.enabled else "") + text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.live and not self.closed:
            self.stream.write("\n")
            self.stream.flush()
        self.closed = True
