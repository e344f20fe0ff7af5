"""The run's progress on stderr: a bar on a terminal, plain lines in a log."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from tqdm import tqdm

PROGRESS_INTERVAL_S = 30.0  # without a terminal: a plain line at least this often
PROGRESS_STEP = 0.05  # ... and whenever another 5% of the cells are done


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _terminal_size(stream: TextIO) -> bool:
    """Whether the terminal reports a window size (a pty may say 0 x 0)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return size.columns > 0 and size.lines > 0


class Progress:
    """The run's progress on stderr: a tqdm bar on a terminal; otherwise (a log file, a
    cluster job, CI) one plain line every PROGRESS_INTERVAL_S seconds or PROGRESS_STEP of
    the cells: done/total, rate, ETA and failures (no carriage-return frames)."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None,
                 interval: float = PROGRESS_INTERVAL_S, step: float = PROGRESS_STEP):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.step = interval, step
        self.bar: tqdm | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._last_t = time.monotonic()
        self._last_done = 0
        isatty = getattr(self.stream, "isatty", lambda: False)
        if not enabled:
            self.mode = "off"
        elif isatty():
            self.mode = "bar"
            # a pty without a window size (0 x 0) would hide the bar: assume 100 x 24
            sized = _terminal_size(self.stream)
            self.bar = tqdm(total=total, desc="cells", unit="cell", smoothing=0.1,
                            file=self.stream, ncols=None if sized else 100,
                            nrows=None if sized else 24)
        else:
            self.mode = "lines"
            self._thread = threading.Thread(target=self._tick, name="regbench-progress",
                                            daemon=True)
            self._thread.start()

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        pct = 100 * self.done / max(self.total, 1)
        return (f"cells: {self.done}/{self.total} done ({pct:.0f}%), {rate:.3g} cells/s, "
                f"elapsed {_duration(elapsed)}, ETA {eta}, "
                f"{self.failed} failed")

    def _emit(self) -> None:  # under the lock
        print(self.line(), file=self.stream, flush=True)
        self._last_t, self._last_done = time.monotonic(), self.done

    def _tick(self) -> None:
        while not self._stop.wait(self.interval / 4):
            with self._lock:
                if time.monotonic() - self._last_t >= self.interval:
                    self._emit()

    def update(self, n: int = 1, failed: int = 0, note: str | None = None) -> None:
        if n <= 0 and not failed:
            return
        with self._lock:
            self.done += n
            self.failed += failed
            if self.bar is not None:
                if note:
                    self.bar.set_postfix_str(note, refresh=False)
                self.bar.update(n)
            elif self.mode == "lines":
                step = max(1, int(self.total * self.step))
                if (self.done // step > self._last_done // step or self.done == self.total
                        or time.monotonic() - self._last_t >= self.interval):
                    self._emit()

    def note(self, text: str) -> None:
        """A status note: the bar's postfix on a terminal (plain lines carry none)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines" and self.done != self._last_done:
            with self._lock:
                self._emit()
