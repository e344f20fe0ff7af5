"""Shared fixtures: one data folder (a bikes CSV in the UCI hour.csv layout, the vision sets
in their official formats, a table CSV)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_files import write_hour_csv


@pytest.fixture(scope="session")
def bikes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for every task that reads files: hour.csv, the vision sets in the
    torchvision layout (small, random pixels, official formats) and table.csv."""
    from data_files import write_all

    d = tmp_path_factory.mktemp("data")
    write_hour_csv(d / "hour.csv")
    write_all(d)
    return d


