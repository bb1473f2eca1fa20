"""A test hook: stop this process, or fail, at a named step (only when ``MICROPKG_TEST_FAULT``
is set)."""

from __future__ import annotations

import errno
import os
import signal

__all__ = ["FAULT_ENV", "fault"]

FAULT_ENV = "MICROPKG_TEST_FAULT"
_seen: dict[str, int] = {}


def fault(step: str) -> None:
    """Send a signal to this process at the ``N``-th time ``step`` is reached, or raise the
    ``OSError`` of an errno name there.

    ``MICROPKG_TEST_FAULT=step[#N][:SIGNAL|:ERRNO]`` (default: the first time, ``KILL``), e.g.
    ``place#40``, ``stage#3:INT`` or ``lock-write:ENOSPC``. Unset (always, outside the
    fault-injection tests): no-op.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    where, _, sig = spec.partition(":")
    name, _, nth = where.partition("#")
    if name != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == int(nth or 1):
        if sig.startswith("E"):
            code = getattr(errno, sig)
            raise OSError(code, os.strerror(code))
        os.kill(os.getpid(), getattr(signal, f"SIG{sig or 'KILL'}"))
