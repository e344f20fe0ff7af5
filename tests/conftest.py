"""Shared fixtures: one data folder (a bikes CSV in the UCI hour.csv layout, the vision sets
in their official formats, a table CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_hour_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A synthetic file with the UCI Bike Sharing hour.csv columns (counts depend on hour/temp)."""
    rng = np.random.default_rng(seed)
    hr = np.arange(n) % 24
    temp = rng.uniform(0, 1, n)
    df = pd.DataFrame({
        "instant": np.arange(1, n + 1),
        "dteday": pd.date_range("2011-01-01", periods=n, freq="h").strftime("%Y-%m-%d"),
        "season": rng.integers(1, 5, n), "yr": rng.integers(0, 2, n),
        "mnth": rng.integers(1, 13, n), "hr": hr, "holiday": rng.integers(0, 2, n),
        "weekday": rng.integers(0, 7, n), "workingday": rng.integers(0, 2, n),
        "weathersit": rng.integers(1, 5, n), "temp": temp, "atemp": temp * 0.9,
        "hum": rng.uniform(0, 1, n), "windspeed": rng.uniform(0, 0.5, n),
    })
    cnt = (50 + 100 * np.sin(np.pi * hr / 24) + 80 * temp + rng.normal(0, 10, n)).round()
    df["casual"] = (cnt * 0.2).round().astype(int)
    df["registered"] = cnt.astype(int) - df["casual"]
    df["cnt"] = cnt.astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def bikes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for every task that reads files: hour.csv, the vision sets in the
    torchvision layout (small, random pixels, official formats) and table.csv."""
    from data_files import write_all

    d = tmp_path_factory.mktemp("data")
    write_hour_csv(d / "hour.csv")
    write_all(d)
    return d


