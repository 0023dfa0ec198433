"""A small human progress line on stderr: redrawn in place on a terminal, a line now and then
when stderr is a file or a pipe (so logs stay readable)."""
from __future__ import annotations

import sys
import time

from sasnet_core.util.progress import clock_duration


class ProgressBar:
    def __init__(self, total: int, desc: str = "train", enabled: bool = True, stream=None,
                 width: int = 24, every_s: float = 30.0):
        self.total, self.desc, self.enabled = max(int(total), 1), desc, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width, self.every_s = width, every_s
        self._last = 0.0

    def update(self, done: int, text: str = "", eta_s: float | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self._last < self.every_s:
            return
        self._last = now
        frac = min(max(done / self.total, 0.0), 1.0)
        fill = int(round(frac * self.width))
        line = (f"{self.desc} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{self.total} "
                f"{100 * frac:3.0f}% eta {clock_duration(eta_s)} {text}")
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(80))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(("\n" if self.tty else "") + text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
