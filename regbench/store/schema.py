"""The store's current schema: its version, tables and columns.

Older versions are upgraded by `migrations.py`; a fresh store is created from `DDL`,
and a test checks that both routes end at the same schema.
"""

from __future__ import annotations

from pathlib import Path

# 1: meta, cells, curves, artifacts, bench; 2: + leases; 3: + cells.base, cells.addons (a
# cell's regularizer stack) and cells.plugin_code (what plugin code made the number); 4: +
# cells.tune (a tuning study's cell: study, trial, role); 5: + conflicts (a cell's second
# result, from another machine, kept by `regbench merge`)
SCHEMA_VERSION = 5
APPLICATION = "regbench"
DEFAULT_STORE = Path(".regbench") / "results.sqlite"

# The public schema of `regbench show` (later work and users rely on these columns).
PUBLIC_COLUMNS = [
    "cell_id", "suite_version", "task", "arch", "regularizer", "strength", "seed", "status",
    "epochs", "best_epoch", "train_loss", "test_loss", "gap_loss", "train_metric",
    "test_metric", "gap_metric", "metric_name", "wall_s", "samples_per_s", "torch_version",
    "device", "threads", "git_commit",
]

CELL_COLUMNS: dict[str, str] = {
    "cell_id": "TEXT PRIMARY KEY",
    "suite_version": "TEXT NOT NULL",
    "task": "TEXT NOT NULL", "task_params": "TEXT NOT NULL",
    "arch": "TEXT NOT NULL", "arch_params": "TEXT NOT NULL",
    "regularizer": "TEXT NOT NULL", "strength": "REAL NOT NULL", "reg_params": "TEXT NOT NULL",
    "seed": "INTEGER NOT NULL", "protocol": "TEXT NOT NULL",
    "status": "TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed'))",
    "error": "TEXT", "diverged_step": "INTEGER",
    "epochs": "INTEGER", "best_epoch": "INTEGER", "n_train": "INTEGER",
    "train_loss": "REAL", "val_loss": "REAL", "test_loss": "REAL", "gap_loss": "REAL",
    "train_metric": "REAL", "val_metric": "REAL", "test_metric": "REAL", "gap_metric": "REAL",
    "metric_name": "TEXT", "higher_is_better": "INTEGER",
    "train_s": "REAL", "wall_s": "REAL", "samples_per_s": "REAL",
    "torch_version": "TEXT", "device": "TEXT", "threads": "INTEGER", "cpu_model": "TEXT",
    "git_commit": "TEXT", "python_version": "TEXT", "hostname": "TEXT",
    "regbench_version": "TEXT", "started_at": "TEXT", "finished_at": "TEXT",
    "cell_json": "TEXT NOT NULL",
    # schema 3 (appended, as ALTER TABLE adds them): the stack around `regularizer`, as
    # labels ('' for none), and JSON of the plugin code of the cell's entries (NULL: none)
    "base": "TEXT NOT NULL DEFAULT ''",
    "addons": "TEXT NOT NULL DEFAULT ''",
    "plugin_code": "TEXT",
    # schema 4: JSON of the cell's tuning study, trial and role ('' for a grid cell)
    "tune": "TEXT NOT NULL DEFAULT ''",
}

V3_COLUMNS = ("base", "addons", "plugin_code")
V4_COLUMNS = ("tune",)

# What a cell computed. `regbench merge` compares these, with the cell's curves and
# artifacts, to tell one result from two; the other columns are the cell's identity (equal
# for equal ids), its timing and its provenance (which differ from machine to machine).
RESULT_COLUMNS = (
    "status", "diverged_step", "epochs", "best_epoch", "n_train", "train_loss", "val_loss",
    "test_loss", "gap_loss", "train_metric", "val_metric", "test_metric", "gap_metric",
    "metric_name", "higher_is_better",
)

# A second result of a stored cell that `regbench merge` found in another store: the same
# cell id, other numbers (another CPU's bits). The `cells` row keeps the first store's
# result (the report uses it); each other result is kept here, whole, once per digest.
CONFLICT_COLUMNS: dict[str, str] = {
    "cell_id": "TEXT NOT NULL REFERENCES cells(cell_id) ON DELETE CASCADE",
    "digest": "TEXT NOT NULL",  # sha256 of its RESULT_COLUMNS, curves and artifacts
    "source": "TEXT NOT NULL",  # the store it came from, as given to `regbench merge`
    "kept_source": "TEXT NOT NULL",  # the store the `cells` row came from
    "hostname": "TEXT", "cpu_model": "TEXT",  # the machine that computed it
    "differs": "TEXT NOT NULL",  # what differs from the kept result: columns, curves, artifacts
    "row_json": "TEXT NOT NULL",  # its `cells` row, every column
    "curves_json": "TEXT NOT NULL",  # its curve rows
    "artifacts_json": "TEXT NOT NULL",  # its artifacts, name -> stored JSON text
    "merged_at": "TEXT NOT NULL",
}

CONFLICTS_DDL = ("CREATE TABLE IF NOT EXISTS conflicts ("
                 + ", ".join(f"{k} {v}" for k, v in CONFLICT_COLUMNS.items())
                 + ", PRIMARY KEY (cell_id, digest))")

BENCH_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL", "op": "TEXT NOT NULL", "impl": "TEXT NOT NULL",
    "baseline": "TEXT", "backend": "TEXT", "dtype": "TEXT", "numel": "INTEGER",
    "threads": "INTEGER", "device": "TEXT", "median_s": "REAL", "iqr_s": "REAL",
    "gbps": "REAL", "ratio_vs_native": "REAL", "ratio_vs_copy": "REAL",
    "machine": "TEXT", "suite_version": "TEXT", "git_commit": "TEXT", "created_at": "TEXT",
}

# A driver's claim on a cell it is training (regbench/executors/leases.py). Not a foreign
# key: the cell has no row until it is committed, in the transaction that drops the lease.
LEASE_COLUMNS: dict[str, str] = {
    "cell_id": "TEXT PRIMARY KEY",
    "driver": "TEXT NOT NULL",  # a random id per `run_cells` call
    "host": "TEXT NOT NULL", "pid": "INTEGER NOT NULL",
    "claimed_at": "TEXT NOT NULL",  # ISO time, for people
    "expires_at": "REAL NOT NULL",  # Unix time; renewed while the cell trains
}

LEASES_DDL = ("CREATE TABLE IF NOT EXISTS leases ("
              + ", ".join(f"{k} {v}" for k, v in LEASE_COLUMNS.items()) + ")")

DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cells ("
    + ", ".join(f"{k} {v}" for k, v in CELL_COLUMNS.items()) + ")",
    "CREATE TABLE IF NOT EXISTS curves (cell_id TEXT NOT NULL REFERENCES cells(cell_id) "
    "ON DELETE CASCADE, epoch INTEGER NOT NULL, train_loss REAL, val_loss REAL, "
    "val_metric REAL, PRIMARY KEY (cell_id, epoch))",
    "CREATE TABLE IF NOT EXISTS artifacts (cell_id TEXT NOT NULL REFERENCES cells(cell_id) "
    "ON DELETE CASCADE, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (cell_id, name))",
    "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{k} {v}" for k, v in BENCH_COLUMNS.items()) + ")",
    "CREATE INDEX IF NOT EXISTS cells_axes ON cells (suite_version, task, regularizer)",
    LEASES_DDL,
    CONFLICTS_DDL,
]
