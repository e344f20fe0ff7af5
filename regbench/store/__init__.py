"""The SQLite results store: schema, upgrades of older stores, and `regbench check`.

`db.py` is the store itself, `schema.py` its current tables, `migrations.py` the
upgrades from older schema versions, `check.py` the health check, `faults.py` the
one-line descriptions of SQLite and OS errors.
"""

from regbench.store.db import Store, inspect
from regbench.store.schema import (
    APPLICATION,
    BENCH_COLUMNS,
    CELL_COLUMNS,
    DEFAULT_STORE,
    LEASE_COLUMNS,
    PUBLIC_COLUMNS,
    SCHEMA_VERSION,
)

__all__ = ["APPLICATION", "BENCH_COLUMNS", "CELL_COLUMNS", "DEFAULT_STORE", "LEASE_COLUMNS",
           "PUBLIC_COLUMNS", "SCHEMA_VERSION", "Store", "inspect"]
