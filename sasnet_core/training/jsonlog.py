"""JSON-lines progress that other programs (the GUI, scripts) follow while training runs.

One JSON object per line, flushed at once. Every record has ``event`` and ``time`` (Unix seconds).
The first record is ``{"event": "start", "config": {...}, ...}``, the last ``{"event": "end",
"status": ..., "checkpoint": ..., ...}`` (or ``"error"`` then ``"end"`` with status ``"failed"``).
In between: ``step``, ``val``, ``checkpoint`` and ``message`` records. Values are plain JSON (NaN and
infinity become null).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import IO, Any

from sasnet_core.io.atomic import ensure_folder


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return _clean(value.item())
    return str(value)


class JsonLog:
    """Write records to a file path, ``"-"`` (stdout) or nowhere (``None`` or ``enabled=False``)."""

    def __init__(self, target: str | os.PathLike | None, enabled: bool = True):
        self._fh: IO[str] | None = None
        self._own = False
        self._name: str | None = None  # the file, for errors a person can act on (a full disk)
        self.started = False  # a "start" record was written (failures write one first)
        if target is None or not enabled:
            return
        if str(target) == "-":
            self._fh = sys.stdout
        else:
            path = self._name = os.fspath(target)
            ensure_folder(os.path.dirname(os.path.abspath(path)))
            self._fh = open(path, "a", encoding="utf-8")  # append: a resumed run continues its log
            self._own = True

    def write(self, event: str, **fields: Any) -> None:
        if event == "start":
            self.started = True
        if self._fh is None:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        try:
            self._fh.write(json.dumps(_clean(record), allow_nan=False) + "\n")
            self._fh.flush()
        except OSError as exc:
            if exc.filename is not None or self._name is None:
                raise
            raise type(exc)(exc.errno, exc.strerror, self._name) from None

    def fail(self, exc: BaseException, config: dict | None = None) -> None:
        """Close the stream of a run that failed: start (if not written yet), error, end."""
        try:
            if not self.started:
                self.write("start", config=config or {})
            killed = isinstance(exc, KeyboardInterrupt)
            if not killed:
                self.write("error", message=str(exc), type=type(exc).__name__)
            self.write("end", status="killed" if killed else "failed", message=str(exc))
        except OSError:
            pass  # the log itself failed (a full disk): the error being reported is the one that counts

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if self._own and fh is not None:
            try:
                fh.close()
            except OSError:
                pass  # every record was flushed when written; a failed one was reported then

    def __enter__(self) -> "JsonLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_json_lines(path: str | os.PathLike) -> list[dict]:
    """All complete records of a log (a line still being written is skipped)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out
