"""Run ``sasnet finetune`` as a child process and follow its JSON-lines progress.

The trainer runs in its own process (``sys.executable -m sasnet_core finetune ... --log-json -``):
the GUI keeps its event loop and its memory, and a crash of the trainer (out of memory, a bad
file) is a failed run, not a dead app. QProcess reads the pipes asynchronously on the GUI thread.

Records on stdout (see ``sasnet_core.training.jsonlog``): ``start`` (config, train/val image
counts), ``val`` with ``phase`` before/during/final, ``step`` (loss, eta_s, images_per_s),
``checkpoint``, ``message``, ``error``, and last ``end`` (status, checkpoint, mae, mae_before).

Cancel: a stop file is touched and SIGTERM sent (``QProcess.terminate``); the trainer stops after
the current step and writes a complete model. After a grace period the process is killed; what it
leaves (the temporary file of a save it was in the middle of, the staging data) is removed by the
fine-tune service (``sasnet_core.training.service.FineTuneRun.finish``).
"""
from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

import sasnet_core
from sasnet_core.util.vocab import RUN_KEPT

STDERR_KEEP = 16000  # characters of the trainer's stderr kept for the error dialog


@dataclass
class FineTuneJob:
    """What to run: arguments for ``sys.executable`` (``FineTuneRun.command()``) and the file
    whose existence asks the trainer to stop."""

    argv: list[str]
    stop_file: str | None = None

    def arguments(self) -> list[str]:
        return list(self.argv)


def _package_root() -> str:
    return str(Path(sasnet_core.__file__).resolve().parents[1])


class FineTuneProcess(QObject):
    started = Signal(dict)  # the "start" record
    stepped = Signal(dict)  # each "step" record
    validated = Signal(dict)  # each "val" record (phase before / during / final)
    message = Signal(str)  # "message" records and stray stdout lines
    ended = Signal(dict)  # the "end" record of a run that finished, was stopped or cancelled
    failed = Signal(str)  # what went wrong, with the tail of the trainer's stderr

    def __init__(self, parent: QObject | None = None, grace_ms: int = 15000, nice: int = 10):
        super().__init__(parent)
        self.grace_ms = grace_ms
        self.nice = nice
        self.job: FineTuneJob | None = None
        self.records: list[dict] = []
        self._stdout = b""
        self._stderr = ""
        self._cancelled = False
        self._proc: QProcess | None = None
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    # -- control ---------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    def start(self, job: FineTuneJob, working_dir: str | os.PathLike | None = None) -> None:
        if self.is_running():
            raise RuntimeError("a fine-tuning run is going on already")
        self.job, self.records = job, []
        self._stdout, self._stderr, self._cancelled = b"", "", False
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONPATH", os.pathsep.join(
            p for p in (_package_root(), env.value("PYTHONPATH", "")) if p))
        proc.setProcessEnvironment(env)
        if working_dir is not None:
            proc.setWorkingDirectory(str(working_dir))
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._process_error)
        proc.started.connect(self._lower_priority)
        self._proc = proc
        proc.start(sys.executable, job.arguments())

    def _lower_priority(self) -> None:
        """Background priority for the trainer (POSIX nice), set while it is still importing
        torch, so its compute threads and loader processes inherit it. Training still takes all
        idle CPU, but the GUI thread wins a core at once: with both cores busy, a 10 ms timer
        was measured up to 150 ms late without this."""
        pid = self._proc.processId() if self._proc is not None else 0
        if not pid or not self.nice or not hasattr(os, "setpriority"):
            return
        try:
            current = os.getpriority(os.PRIO_PROCESS, pid)
            os.setpriority(os.PRIO_PROCESS, pid, max(current, min(self.nice, 19)))
        except OSError:  # gone already, or not allowed: it only costs responsiveness
            pass

    def cancel(self) -> None:
        """Ask the trainer to stop after the current step; kill it after ``grace_ms``."""
        if not self.is_running():
            return
        self._cancelled = True
        if self.job and self.job.stop_file:
            try:
                Path(self.job.stop_file).touch()
            except OSError:
                pass
        self._proc.terminate()
        self._kill_timer.start(self.grace_ms)

    def cancel_requested(self) -> bool:
        return self._cancelled

    def _kill(self) -> None:
        if self.is_running():
            self._proc.kill()

    def kill(self) -> None:
        """End the trainer now (quitting: nothing of the run is to be kept)."""
        self._cancelled = True
        self._kill()

    def end_record(self) -> dict | None:
        """The trainer's "end" record, None when it ended without one (killed, failed)."""
        return self._record("end")

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the process ends (shutdown only; signals are still delivered after)."""
        return self._proc is None or self._proc.waitForFinished(msecs)

    def stderr_tail(self, lines: int = 25) -> str:
        return "\n".join(self._stderr.rstrip().splitlines()[-lines:])

    # -- pipes -----------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout += bytes(self._proc.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")  # keep a line still being written
        for raw in lines:
            self._handle_line(raw.decode("utf-8", "replace").strip())

    def _handle_line(self, line: str) -> None:
        if not line:
            return
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "event" not in record:
            self.message.emit(line)
            return
        self.records.append(record)
        event = record["event"]
        if event == "start":
            self.started.emit(record)
        elif event == "step":
            self.stepped.emit(record)
        elif event == "val":
            self.validated.emit(record)
        elif event == "message":
            self.message.emit(str(record.get("text", "")))

    def _read_stderr(self) -> None:
        self._stderr += bytes(self._proc.readAllStandardError()).decode("utf-8", "replace")
        self._stderr = self._stderr[-STDERR_KEEP:]

    # -- end -------------------------------------------------------------------------------
    def _record(self, event: str) -> dict | None:
        return next((r for r in reversed(self.records) if r.get("event") == event), None)

    def _finished(self, exit_code: int, exit_status) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        self._read_stderr()
        if self._stdout.strip():
            self._handle_line(self._stdout.decode("utf-8", "replace").strip())
            self._stdout = b""
        end, error = self._record("end"), self._record("error")
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        # A run stopped by SIGTERM/SIGINT after its step exits 143/130 (128 + the signal), its
        # model complete.
        kept_codes = (0, 128 + signal.SIGINT, 128 + signal.SIGTERM)
        if end is not None and end.get("status") in RUN_KEPT and exit_code in kept_codes and not crashed:
            self.ended.emit(end)
        elif self._cancelled:  # killed, or stopped before training began: nothing to keep
            self.ended.emit({"event": "end", "status": "cancelled", "step": self._last_step(),
                             "checkpoint": None})
        else:
            if error is not None:
                what = str(error.get("message") or error.get("type") or "unknown error")
            elif crashed:
                what = "the trainer process crashed"
            else:
                what = f"the trainer exited with status {exit_code}"
            self.failed.emit(self._with_tail(what))

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed.emit(self._with_tail(f"cannot start {sys.executable}: "
                                             f"{self._proc.errorString()}"))

    def _with_tail(self, what: str) -> str:
        tail = self.stderr_tail()
        return what + (f"\n\nLast lines the trainer wrote:\n{tail}" if tail else "")

    def _last_step(self) -> int:
        step = self._record("step")
        return int(step["step"]) if step else 0
