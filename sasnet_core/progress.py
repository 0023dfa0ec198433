"""A tiny progress bar on stderr for long CLI loops (eval, count, convert).

On a terminal it redraws one line with done/total, rate and ETA. When the stream is not a
terminal (a log file, a pipe, CI) it stays quiet and writes one final summary line, so logs
are not flooded; ``SASNET_PROGRESS=1`` forces the live bar, ``=0`` silences it completely, as
does ``enabled=False``.
"""
from __future__ import annotations

import os
import sys
import time


def _hms(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int | None, desc: str = "", stream=None, enabled: bool | None = None,
                 unit: str = "it", min_interval: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        env = os.environ.get("SASNET_PROGRESS")
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = (env == "1" or (env != "0" and tty)) if enabled is None else bool(enabled)
        # enabled=False (e.g. --no-progress) means no output at all, not even the final line.
        self.final_line = env != "0" and enabled is not False
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self.start, self._last = 0, time.monotonic(), 0.0
        self.min_interval = min_interval
        self.closed = False

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            frac = min(self.n / self.total, 1.0)
            bar = "#" * int(frac * 20) + "-" * (20 - int(frac * 20))
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            return (f"{head}[{bar}] {self.n}/{self.total} {rate:.2f} {self.unit}/s "
                    f"elapsed {_hms(elapsed)} ETA {_hms(eta)}")
        return f"{head}{self.n} {self.unit} {rate:.2f} {self.unit}/s elapsed {_hms(elapsed)}"

    def update(self, n: int = 1, postfix: str = "") -> None:
        self.n += n
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last >= self.min_interval or (self.total and self.n >= self.total):
            self._last = now
            self.stream.write("\r" + self._line() + (f" {postfix}" if postfix else "") + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.live:
            self.stream.write("\r" + self._line() + "\x1b[K\n")
        elif self.final_line:
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
