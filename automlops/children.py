"""No child process outlives the command that started it.

Two mechanisms, one per way a run can end:

- SIGTERM, SIGHUP and SIGINT become a `Terminated` exception in the main thread (a KeyboardInterrupt,
  so Optuna records the trial in flight as failed, as on Ctrl-C). Every `finally` and context manager
  then runs: the gate stops the server it started, staging folders are removed, and the command exits
  128 + the signal's number (143, 129, 130). A second signal during that cleanup exits at once.
- SIGKILL runs no Python code, so every child is started through `popen` or `run`, which ask Linux to
  SIGKILL the child when its parent dies (prctl PR_SET_PDEATHSIG). That holds however the parent ends.
  Elsewhere (macOS, Windows) only the first mechanism applies.

A child started here must be started from the main thread: Linux sends the signal when the thread that
forked the child ends, not the process.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Terminated(KeyboardInterrupt):
    """The command was asked to stop by a signal; raised where the main thread is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # the signal the handlers turned into Terminated, if any


def install_handlers() -> None:
    """Turn SIGTERM, SIGHUP and SIGINT into `Terminated` (call once, from the main thread)."""
    for signum in STOPPING_SIGNALS:
        signal.signal(signum, _stop)


def _stop(signum: int, frame: FrameType | None) -> None:
    for other in STOPPING_SIGNALS:
        signal.signal(other, _stop_now)
    _received.append(signum)
    raise Terminated(signum)


def _stop_now(signum: int, frame: FrameType | None) -> None:
    """A second signal while the first one's cleanup runs (e.g. Ctrl-C twice): leave at once. The
    children still die: they were started to die with this process."""
    os.write(2, f"\nstopped by a second {signal.Signals(signum).name}, without cleanup\n".encode())
    os._exit(128 + signum)


def stop_signal(error: BaseException) -> int | None:
    """The signal that stopped the command, when `error` comes from one: a Terminated or Ctrl-C, or any
    exception raised while one was unwinding (Optuna, interrupted while it records a trial, raises an
    AssertionError from its `finally`), or after the handlers caught a signal."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, Terminated):
            return seen.signum
        if isinstance(seen, KeyboardInterrupt):
            return int(signal.SIGINT)
        seen = seen.__context__
    return _received[0] if _received else None


def stopped() -> bool:
    """Whether a signal has asked this command to stop."""
    return bool(_received)


def stop_descendants(timeout: float = 3.0) -> None:
    """After a signal stopped the command: end any descendant still running, including those a library
    started on its own rather than through `popen` or `run` (SIGTERM, then SIGKILL after `timeout`)."""
    if not _received:
        return
    import psutil

    try:
        left = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in left:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(left, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen, with the child killed when this process dies."""
    return subprocess.Popen(args, preexec_fn=_die_with_parent(), **kwargs)


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run, with the child killed when this process dies (an exception, Terminated
    included, already kills it: subprocess.run does)."""
    return subprocess.run(args, preexec_fn=_die_with_parent(), **kwargs)


def _die_with_parent() -> Callable[[], None] | None:
    """The function the forked child runs before exec: it asks for SIGKILL when its parent dies,
    then checks that the parent is still the one that forked it (it may have died in between)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:  # in the child, between fork and exec: no imports, no allocation to speak of
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), kill)

    return preexec


@functools.cache
def _prctl() -> Any:
    """libc's prctl, looked up in the parent (never after fork), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
