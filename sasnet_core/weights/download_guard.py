"""The rules that end a download which would otherwise never end, and the check of its address.

Timeouts alone do not bound a transfer: a read timeout fires only after complete silence, so a
server that sends one byte every two seconds keeps a 156 MB download going for ten years. The
libraries underneath (urllib3 for a mirror, gdown for Google Drive) give connect and read
timeouts, retries and, in gdown, a cancel event; what no library offers is the rule a person
applies when watching a download, so it lives here:

* **stall**: when less than ``min_bytes`` arrived in the last ``window_s`` seconds, the transfer
  is abandoned with one sentence (the part kept so far resumes on the next run);
* **size cap**: the released file's size is known before the first byte, so a response that says
  it is bigger, or that goes on past it without saying its length, is stopped at once;
* **progress from the first byte**: the caller's progress callback is told the expected size
  before the connection is made, so a bar appears at once and moves with every piece received.

``min_bytes`` is 512 KiB: gdown hands its progress callback 512 KiB at a time, so anything smaller
could not be told from a stall there; over the default 60 s window that is about 8.7 KB/s, at which
the released file would take five hours.
"""
from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
from collections import deque
from typing import Callable

from sasnet_core.util.errors import DownloadError

# Seconds to wait for a connection or for the next bytes; a blocked network fails within this.
TIMEOUT_S = 10.0
STALL_WINDOW_S = 60.0
STALL_MIN_BYTES = 512 * 1024

Progress = Callable[[int, "int | None"], None]


def checked_address(url: str, where: str = "--url") -> urllib.parse.SplitResult:
    """``url`` taken apart, or a DownloadError naming it and what is wrong with it."""
    text = str(url)

    def refuse(why: str) -> DownloadError:
        return DownloadError(f"cannot download from {text!r} ({where}): {why}")

    if any(c.isspace() or ord(c) < 32 for c in text):
        raise refuse("it contains spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # an out-of-range or non-numeric port raises here
    except ValueError as exc:
        raise refuse(f"it is not a valid address ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse("only http and https addresses are supported")
    if not parts.hostname:
        raise refuse("it names no host")
    if port == 0:
        raise refuse("port 0 is not a port a server listens on")
    return parts


class TransferGuard:
    """Watches one transfer of ``what`` (a file name) from ``source`` (a host), ``expected`` bytes.

    ``feed(done, total)`` after every piece received raises DownloadError when the size cap is
    passed or the transfer stalled, and forwards progress; ``watching(cancel)`` also checks from a
    thread, for a library that reads large blocks and can be stopped through an event (gdown).
    """

    def __init__(self, what: str, source: str, expected: int, progress: Progress | None = None, *,
                 window_s: float = STALL_WINDOW_S, min_bytes: int = STALL_MIN_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.source, self.expected = what, source, int(expected)
        self.progress = progress
        self.window_s, self.min_bytes = float(window_s), int(min_bytes)
        self.clock = clock
        self.done = 0
        self.stall_error: DownloadError | None = None  # set by the watching thread
        self._lock = threading.Lock()
        self._marks: deque[tuple[float, int]] = deque()
        self._since = clock()

    # -- the rules -----------------------------------------------------------------------
    def begin(self, done: int = 0) -> None:
        """The transfer (re)starts at ``done`` bytes (a resumed part): the clock starts now and
        the progress callback learns the expected size at once."""
        with self._lock:
            self.done = int(done)
            self._since = self.clock()
            self._marks.clear()
            self._marks.append((self._since, self.done))
        self._report(None)

    def announced(self, total: int | None) -> None:
        """A response's stated length (``total``: bytes in all, a resumed part included)."""
        if total is not None and total != self.expected:
            raise self.too_large(f"announces {total:,} bytes")

    def feed(self, done: int, total: int | None = None) -> None:
        """``done`` bytes in all have arrived (call before writing the last piece)."""
        if done > self.expected:
            raise self.too_large(f"sent more than {self.expected:,} bytes")
        self.announced(total)
        now = self.clock()
        with self._lock:
            self.done = int(done)
            self._marks.append((now, self.done))
        error = self.check(now)
        if error is not None:
            raise error
        self._report(total)

    def check(self, now: float | None = None) -> DownloadError | None:
        """The stall error when under ``min_bytes`` arrived in the last ``window_s`` seconds."""
        now = self.clock() if now is None else now
        with self._lock:
            if now - self._since < self.window_s:
                return None
            cutoff = now - self.window_s
            while len(self._marks) > 1 and self._marks[1][0] <= cutoff:
                self._marks.popleft()  # keep the last mark at or before the window's start
            gained = self.done - self._marks[0][1]
            if gained >= self.min_bytes:
                return None
            done = self.done
        return DownloadError(
            f"the download of {self.what} from {self.source} stalled: {gained:,} bytes arrived in the "
            f"last {self.window_s:g} s, under the {self.min_bytes:,} it needs to go on "
            f"({done / 1e6:.1f} of {self.expected / 1e6:.1f} MB so far); nothing was registered, and "
            "running the same command again resumes it")

    def too_large(self, how: str) -> DownloadError:
        """Not the released file by its size (too long, or announced at another length)."""
        return DownloadError(f"{self.source} {how} for {self.what}, which has {self.expected:,} bytes "
                             f"as released: it is not the released {self.what}; the download was stopped "
                             "and deleted, nothing was registered")

    def silent(self, timeout: float) -> DownloadError:
        """The read timeout fired in the middle of the body: no byte for ``timeout`` seconds."""
        return DownloadError(
            f"the download of {self.what} from {self.source} stalled: nothing arrived for {timeout:g} s "
            f"({self.done / 1e6:.1f} of {self.expected / 1e6:.1f} MB so far); nothing was registered, and "
            "running the same command again resumes it")

    def _report(self, total: int | None) -> None:
        if self.progress is not None:
            self.progress(self.done, total if total is not None else self.expected)

    # -- for a library that reads in large blocks ------------------------------------------
    @contextlib.contextmanager
    def watching(self, cancel: threading.Event, every_s: float = 0.25):
        """Check the stall rule every ``every_s`` seconds and set ``cancel`` when it is broken,
        so a drip inside one of the library's blocks is stopped too; ``stall_error`` says why."""
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(every_s):
                error = self.check()
                if error is not None:
                    self.stall_error = error
                    cancel.set()
                    return

        thread = threading.Thread(target=watch, name="download-stall-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            finished.set()
            thread.join()
