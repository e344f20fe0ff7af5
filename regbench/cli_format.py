"""Render a frame as an aligned table, CSV or JSON for the terminal."""

from __future__ import annotations

import pandas as pd

FORMATS = ("table", "csv", "json")
SHOW_FORMATS = (*FORMATS, "parquet")  # parquet: `regbench.load`'s typed frame, to a file


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=1, double_precision=15) + "\n"
    if df.empty:
        return "(no rows)\n"
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 250, "display.float_format", "{:.4g}".format):
        return df.to_string(index=False) + "\n"
