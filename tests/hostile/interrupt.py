"""Signals as people send them: ``sasnet`` run as its own process group (as a shell job, ``timeout``,
systemd or a job scheduler starts it), signalled once it is working, and what it leaves looked at.

A case built with :func:`signal_case` runs ``python -m sasnet_core ARGV`` in a new session, waits until
``ready(out, err, ctx)`` sees it working (a first result line, a progress bar, a training step), sends
the signal to the whole group or to the process alone, and hands test_hostile a :class:`Result`
like an in-process run's: a traceback on stderr is a failure there as anywhere.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from hostile import Case, Ctx, Result

REPO = Path(__file__).resolve().parents[2]
STARTS_WITHIN_S = 90.0  # importing torch and loading the model, on a busy 2-core machine


def run_and_signal(argv: list, ctx_or_cwd, ready: Callable[[str, str], bool], sig: int,
                   group: bool = True, env: dict | None = None) -> Result:
    cwd = getattr(ctx_or_cwd, "tmp", ctx_or_cwd)
    environ = dict(os.environ, OMP_NUM_THREADS="1", SASNET_PROGRESS="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "sasnet_core", *map(str, argv)], cwd=cwd, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    chunks: dict[str, list[str]] = {"out": [], "err": []}

    def pump(stream, key):
        for raw in iter(lambda: stream.read1(65536), b""):
            chunks[key].append(raw.decode("utf-8", "replace"))

    readers = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
    for t in readers:
        t.start()
    try:
        deadline = time.monotonic() + STARTS_WITHIN_S
        while not ready("".join(chunks["out"]), "".join(chunks["err"])):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sasnet {' '.join(map(str, argv))} did not start working (exit "
                                     f"{proc.poll()}):\n{''.join(chunks['err'])[-3000:]}")
            time.sleep(0.05)
        if group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for t in readers:
        t.join(timeout=10)
    return Result(code, "".join(chunks["out"]), "".join(chunks["err"]), None)


def printed_a_line(out: str, err: str) -> bool:
    return "\n" in out


_BAR = re.compile(r" [1-9]\d*/\d+ ")


def progress_shown(out: str, err: str) -> bool:
    """The live bar (SASNET_PROGRESS=1) has counted one item."""
    return bool(_BAR.search(err))


def stepped(out: str, err: str) -> bool:
    """A JSON-lines ``step`` record on stdout (``--log-json -``)."""
    return '"event": "step"' in out


def signal_case(name: str, make: Callable[[Ctx], list], ready: Callable[[str, str], bool], sig: int,
                group: bool = True, check: Callable | None = None) -> Case:
    """Exit 128 + the signal, one line on stderr naming the signal, no traceback, and ``check``."""
    def run(ctx: Ctx, argv: list) -> Result:
        return run_and_signal(argv, ctx, ready, sig, group)

    def checked(ctx: Ctx, result: Result) -> None:
        stopped = [line for line in result.err.splitlines() if "stopped by" in line]
        assert len(stopped) == 1, result.err
        if check is not None:
            check(ctx, result)

    return Case(name, lambda ctx: (make(ctx), [signal.Signals(sig).name]), 128 + sig, checked,
                timeout=180.0, run=run)
