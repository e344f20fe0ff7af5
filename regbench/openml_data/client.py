"""Calls into the `openml` package: with a deadline, the ARFF file (whose md5 OpenML
publishes) rather than the unchecksummed Parquet copy, and errors as one line.

The client sends its requests without a timeout, so a server that accepts a connection
and never answers would hold a run forever: each call runs in a daemon thread that is
given up after $REGBENCH_FETCH_TIMEOUT_S seconds (600 by default). The client's own
retries (its `connection_n_retries` setting) happen within that time.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from regbench.errors import DataError, RegbenchError

T = TypeVar("T")
TIMEOUT_ENV = "REGBENCH_FETCH_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0
SKIP_PARQUET_ENV = "OPENML_SKIP_PARQUET"  # the client's own switch


def timeout_s() -> float:
    """$REGBENCH_FETCH_TIMEOUT_S (seconds a download may take), else 600."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None or not text.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise RegbenchError(f"{TIMEOUT_ENV}={text!r} is not allowed; allowed: a number of "
                            "seconds > 0")
    return value


@contextlib.contextmanager
def arff_only() -> Iterator[None]:
    """The client reads and downloads the ARFF file, never the Parquet copy: the ARFF's md5
    is published and checked, and a Parquet download would go to another host even when
    the ARFF is cached."""
    before = os.environ.get(SKIP_PARQUET_ENV)
    os.environ[SKIP_PARQUET_ENV] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SKIP_PARQUET_ENV, None)
        else:
            os.environ[SKIP_PARQUET_ENV] = before


def call(what: str, fn: Callable[[], T], timeout: float | None = None) -> T:
    """`fn()` (a call into the client), or a DataError that starts with `what` and says
    what went wrong: an error of the client or the server, or no answer within `timeout`
    seconds (default: `timeout_s()`)."""
    limit = timeout_s() if timeout is None else timeout
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    with arff_only():
        worker = threading.Thread(target=run, name="regbench-openml", daemon=True)
        worker.start()
        worker.join(limit)
    if worker.is_alive():
        from regbench.openml_data.cache import server

        raise DataError(f"{what}: no complete answer from the OpenML server {server()} within "
                        f"{limit:g} s (${TIMEOUT_ENV}); try again later, or raise the limit "
                        "for a large dataset")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, RegbenchError):
            raise exc
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        raise DataError(f"{what}: {explain(exc)}") from None
    return box["value"]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def explain(exc: BaseException) -> str:
    """What a client error means, in one line."""
    import requests
    from openml import exceptions as oe

    from regbench.openml_data.cache import server

    if isinstance(exc, oe.OpenMLHashException):
        return ("the downloaded file does not match the md5 checksum OpenML publishes for it "
                f"({_first_line(str(exc))})")
    if isinstance(exc, oe.OpenMLPrivateDatasetError):
        return f"the dataset is private on {server()} ({_first_line(str(exc))})"
    if isinstance(exc, oe.OpenMLServerException):
        message = re.sub(r" - None$", "", str(exc.message or "")).strip()
        return f"the OpenML server {server()} answers {message!r} (code {exc.code})"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"cannot reach the OpenML server {server()} ({type(exc).__name__}: " \
               f"{_first_line(str(exc))})"
    text = str(exc)
    status = re.search(r"Status code: (\d+)", text)
    if status:
        return f"the OpenML server {server()} answered HTTP {status[1]} (not an OpenML reply)"
    if isinstance(exc, KeyError) and "oml:" in text:
        return f"the OpenML server {server()} answered with an error page, not an OpenML reply"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write or read the cache{where} ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {_first_line(text)}"
