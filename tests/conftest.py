"""Shared fixtures: one data folder (a bikes CSV in the UCI hour.csv layout, the vision sets
in their official formats, a table CSV, an OpenML cache)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_files import write_hour_csv


@pytest.fixture(scope="session")
def bikes_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data folder for every task that reads files: hour.csv, the vision sets in the
    torchvision layout (small, random pixels, official formats), table.csv and an OpenML
    cache holding task 11 (fetched from a fake OpenML server, which the openml client is
    pointed at for the session: the cache is filed under the server's address)."""
    import openml
    from data_files import OPENML_TASK, openml_frame, write_all
    from openml_server import FakeOpenML

    from regbench.openml_data import cache, fetch
    from regbench.specs import TaskSpec, freeze

    d = tmp_path_factory.mktemp("data")
    write_hour_csv(d / "hour.csv")
    write_all(d)
    fake = FakeOpenML().start()
    fake.add_dataset(101, "tiny-credit", openml_frame(), "class")
    fake.add_task(OPENML_TASK, 101, "class")
    before = openml.config.server
    openml.config.server = fake.api
    (done,), _ = fetch.fetch([TaskSpec("openml", freeze({"task_id": OPENML_TASK}))], d)
    assert done.status == "downloaded", done.line
    yield d
    fake.stop()
    openml.config.server = before
    cache.configure(None)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One end-to-end run of the smoke matrix in a subprocess (runs the cells, then reports),
    shared by the report's tests (test_report.py, test_report_html.py)."""
    root = tmp_path_factory.mktemp("report")
    store, out = root / "store.sqlite", root / "r1"
    proc = subprocess.run(
        [sys.executable, "-m", "regbench.report", "--matrix", "smoke", "--store", str(store),
         "--out", str(out), "--jobs", "2", "--no-progress"],
        capture_output=True, text=True, timeout=900)  # a loaded machine
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "94 run now (94 ok" in proc.stdout
    return {"root": root, "store": store, "out": out}
