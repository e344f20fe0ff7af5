"""SIGINT and SIGTERM stop a run cleanly: `stop_on_signals` turns them into `Interrupted` in
the driver, so workers are terminated and leases dropped before the process exits."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regbench.executors.summary import RunSummary


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the driver: the run stopped (workers terminated, leases
    dropped). `summary` holds what was done; the CLI exits 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.summary: RunSummary | None = None

    @property
    def name(self) -> str:
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15; `signal N` for a number with no name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_stopping = threading.Event()  # set once a stop began: later signals are ignored


def interrupt(signum: int) -> Interrupted:
    """The exception that stops a run for `signum` (for an executor that learns of the
    signal itself, e.g. its worker was sent SIGTERM); later signals are then ignored."""
    _stopping.set()
    return Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread (SIGTERM's default would
    kill the driver with its leases held); a second signal while stopping is ignored, so
    the clean-up (terminate workers, drop leases) runs to its end. Outside the main thread
    (where handlers cannot be set) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not _stopping.is_set():
            raise interrupt(signum)

    _stopping.clear()
    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _stopping.clear()
