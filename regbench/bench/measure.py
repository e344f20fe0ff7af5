"""How `regbench bench` and the asv suites time a callable: `torch.utils.benchmark.Timer`
with num_threads set, warm-up first, median and IQR, on the wall or the CPU clock; and
`measure_pair`, which times two callables in alternating rounds so a drift of the machine
lands on both sides of a ratio. Shared by `bench.cpu` and `bench.optim`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.benchmark import Measurement, Timer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    # CPU seconds of this process: on a machine shared with other jobs, the time the process
    # was descheduled does not count (cache and memory contention still do). One thread only.
    "cpu": time.process_time,
}
_clock: list[Callable[[], float]] = [time.perf_counter]


def use_clock(name: str) -> None:
    """Time every later measurement on CLOCKS[name] (`--clock`)."""
    _clock[0] = CLOCKS[name]


def warm(fns: Sequence[Callable[[], Any]], threads: int) -> None:
    """Two untimed calls of each fn on `threads` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(2):
            for fn in fns:
                fn()
    finally:
        torch.set_num_threads(old)


def timed(fn: Callable[[], Any], threads: int, min_time: float) -> Measurement:
    """fn() timed in blocks for at least min_time (on the clock that `--clock` chose: wall
    time by default); no warm-up, the caller does it."""
    return Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads,
                 timer=_clock[0]).blocked_autorange(min_run_time=min_time)


def measure(fn: Callable[[], Any], threads: int, min_time: float) -> tuple[float, float]:
    """(median, IQR) seconds of fn() on `threads` threads, after warm-up."""
    warm([fn], threads)
    m = timed(fn, threads, min_time)
    return float(m.median), float(m.iqr)


def measure_pair(base: Callable[[], Any], ours: Callable[[], Any], threads: int,
                 min_time: float, rounds: int = 6) -> tuple[tuple[float, float],
                                                            tuple[float, float]]:
    """(median, IQR) seconds of `base` and of `ours`, timed in alternating rounds.

    For a ratio near 1 (a memory-bound step against torch's): timing one after the other
    lets a drift of the machine (a neighbour VM, frequency) land on one side only;
    interleaving `rounds` rounds of min_time / rounds each spreads it over both.
    """
    warm([base, ours], threads)
    tb: list[float] = []
    to: list[float] = []
    for _ in range(rounds):
        tb += timed(base, threads, min_time / rounds).times
        to += timed(ours, threads, min_time / rounds).times

    def stats(ts: list[float]) -> tuple[float, float]:
        q1, med, q3 = (float(v) for v in np.percentile(ts, [25, 50, 75]))
        return med, q3 - q1

    return stats(tb), stats(to)
