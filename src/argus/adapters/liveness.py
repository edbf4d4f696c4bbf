"""Is the engine process that published a status still alive? Asked by web workers on the same host.

The engine publishes who it is (``this_process()``) with every heartbeat. A worker on the same
host and in the same PID namespace asks the kernel (``process_alive()``): a killed engine reads as
dead at once instead of after the heartbeat goes stale. The process's start time (Linux) tells a
reused PID from the engine; elsewhere the heartbeat's age remains the only sign.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping

_PROC = "/proc"


def this_process() -> dict[str, object]:
    """Identify the calling process for ``process_alive``: pid, host, PID namespace, start time."""
    pid = os.getpid()
    stat = _stat(pid)
    return {"pid": pid, "host": _hostname(), "pid_ns": _pid_namespace(),
            "start_ticks": None if stat is None else stat[1]}


def process_alive(identity: object) -> bool | None:
    """True or False for a process seen from here (same host and PID namespace); None when it cannot be seen."""
    if not isinstance(identity, Mapping) or not _visible_here(identity):
        return None
    pid = identity["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    if _stat(os.getpid()) is None:
        return True  # no /proc here: the signal's answer is all there is
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False  # gone meanwhile, or a zombie its parent has not reaped yet
    started = identity.get("start_ticks")
    return started is None or stat[1] == started  # a different start time: the PID was reused


def _visible_here(identity: Mapping) -> bool:
    pid = identity.get("pid")
    return (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0
            and identity.get("host") == _hostname() and identity.get("pid_ns") == _pid_namespace())


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


@functools.cache
def _pid_namespace() -> str | None:
    """The PID namespace (``pid:[4026531836]``): two containers may share a host name, never this."""
    try:
        return os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from ``/proc/<pid>/stat``; None when unreadable."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    try:
        return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime) of proc(5)
    except (IndexError, ValueError):
        return None
