"""`regbench.load`: a store's cells as a typed pandas DataFrame, one row per cell.

The store keeps a cell's parameters, protocol, stack and tuning fields as JSON text; here
each is a column of its own, typed:

- `task_param.<k>`, `arch_param.<k>`, `reg_param.<k>`, `protocol.<k>`: one column per
  parameter any cell has (missing where a cell does not);
- `base` and `with`: the stack around the regularizer as labels (`a=1 + b[k=v]=0.1`, empty
  for none), and per member `base.<name>` / `with.<name>` (its strength) and
  `base.<name>.<k>` / `with.<name>.<k>` (its parameters);
- `tune.<k>` (study, sampler, batch, tune_seeds, lr, trial, role) for a tuning study's cell;
- metrics and timings as float64, counts as nullable Int64, `higher_is_better` as boolean,
  `status` as a category (ok, diverged, failed), `started_at` / `finished_at` as UTC
  datetimes, text as the nullable string dtype.

A parameter's column takes the type of its values: booleans, integers (Int64), numbers
(float64) or text; a list, or values of mixed kinds, become JSON text. `regbench show
--format parquet --out FILE` writes this frame; `pandas.read_parquet(FILE)` gives it back,
dtypes included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

STATUSES = ("ok", "diverged", "failed")
TIMESTAMPS = ("started_at", "finished_at")
BOOLEANS = ("higher_is_better",)
# JSON columns of the store, expanded into one column per key under a prefix
EXPANDED = {"task_params": "task_param", "arch_params": "arch_param",
            "reg_params": "reg_param", "protocol": "protocol", "tune": "tune"}
DROPPED = ("cell_json",)  # every field in it is a column already


def load(store: str | Path | None = None) -> pd.DataFrame:
    """Every cell of the store at `store` (default: the CLI's, `.regbench/results.sqlite`)
    as a typed DataFrame, one row per cell, in `regbench show`'s order. Read-only."""
    from regbench.store import DEFAULT_STORE, Store

    with Store(DEFAULT_STORE if store is None else store, readonly=True) as s:
        return typed(s.cells_frame())


def typed(cells: pd.DataFrame) -> pd.DataFrame:
    """`Store.cells_frame()` with its JSON columns expanded and every column typed."""
    from regbench.store.schema import CELL_COLUMNS

    columns: dict[str, pd.Series | pd.api.extensions.ExtensionArray] = {}
    n = len(cells)
    for col in cells.columns:
        if col in DROPPED:
            continue
        if col in EXPANDED:
            columns.update(_expand(cells[col], EXPANDED[col]))
            if col == "reg_params":  # the stack follows the regularizer's own parameters
                columns.update(_stack(cells, n))
            continue
        if col in ("base", "addons"):  # with the stack, as `base` and `with`
            continue
        columns[col] = _column(col, cells[col], CELL_COLUMNS.get(col, "TEXT"))
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _column(name: str, values: pd.Series, sql: str) -> Any:
    if name == "status":
        return pd.Categorical(values.astype(object), categories=list(STATUSES))
    if name in TIMESTAMPS:
        return pd.to_datetime(values.astype(object), utc=True, format="ISO8601").dt.as_unit("us")
    if name in BOOLEANS:
        return pd.array([None if pd.isna(v) else bool(v) for v in values], dtype="boolean")
    if sql.startswith("REAL"):
        return pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
    if sql.startswith("INTEGER"):
        return pd.array([None if pd.isna(v) else int(v) for v in values], dtype="Int64")
    return _text(values.tolist())


def _text(values: list[Any]) -> Any:
    return pd.array([None if v is None or (isinstance(v, float) and v != v) else str(v)
                     for v in values], dtype="string")


def _loads(blob: Any) -> dict[str, Any]:
    if not isinstance(blob, str) or not blob:
        return {}
    value = json.loads(blob)
    return value if isinstance(value, dict) else {}


def _expand(blobs: pd.Series, prefix: str) -> dict[str, Any]:
    """One typed column `prefix.<key>` per key of the JSON objects `blobs`."""
    return _keyed([_loads(b) for b in blobs], prefix)


def _keyed(dicts: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {f"{prefix}.{k}": _infer([d.get(k) for d in dicts]) for k in sorted(keys)}


def _infer(values: list[Any]) -> Any:
    """A column of parameter values, typed by what they are (None: missing)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.array(values, dtype="boolean")
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.array(values, dtype="Int64")
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       for v in present):
        return pd.Series([float("nan") if v is None else float(v) for v in values],
                         dtype="float64").to_numpy()
    if all(isinstance(v, str) for v in present):
        return _text(values)
    return _text([None if v is None else json.dumps(v, sort_keys=True) for v in values])


def _stack(cells: pd.DataFrame, n: int) -> dict[str, Any]:
    """`base`, `with` (labels) and each member's strength and parameters."""
    from regbench.store.schema import CELL_COLUMNS

    out: dict[str, Any] = {}
    stacks = [json.loads(b) if isinstance(b, str) else {} for b in cells["cell_json"]] \
        if "cell_json" in cells else [{}] * n
    for key, label_col in (("base", "base"), ("addons", "with")):
        if key in cells:
            out[label_col] = _column(key, cells[key], CELL_COLUMNS[key])
        strengths: list[dict[str, Any]] = []
        params: list[dict[str, Any]] = []
        for stack in stacks:
            members = stack.get(key) or []
            strengths.append({m["name"]: float(m["strength"]) for m in members})
            params.append({f"{m['name']}.{k}": v for m in members
                           for k, v in (m.get("params") or [])})
        member_cols = {**_keyed(strengths, label_col), **_keyed(params, label_col)}
        out.update({k: member_cols[k] for k in sorted(member_cols)})
    return out
