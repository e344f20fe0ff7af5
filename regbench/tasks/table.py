"""Your own table: a CSV or Parquet file, one target column, classification or regression.

    [[blocks]]
    tasks = [{name = "table", path = "data/houses.csv", target = "price"}]
    archs = ["mlp"]
    regularizers = ["none", "l2", "dropout"]

Preprocessing is fitted on the train split only (after the seeded 60/20/20 split):
numeric columns get missing values replaced by the train median; every other column
(strings, categories) is categorical: missing values become the train split's most
frequent value, then the column is one-hot encoded over the categories seen in train
(a category seen only in validation or test encodes as all zeros). Rows whose target is
missing are dropped. Features are then standardized like every tabular task. That code
(`regbench.tasks.frame`) is shared with the `openml` task.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from regbench.errors import DataError, RegbenchError
from regbench.params import Param
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import (
    LABEL_NOISE,
    LABEL_NOISE_KIND,
    N_TRAIN,
    Task,
    raw_mode,
)
from regbench.tasks.frame import (  # noqa: F401  (apply_features, fit_features: re-exported)
    FrameTask,
    apply_features,
    fit_features,
    frame_arrays,
    frame_problems,
    infer_kind,
)

KINDS = ("auto", "classification", "regression")
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def resolve(path: str) -> Path:
    """`path` as given (absolute, or relative to the current directory), ~ expanded."""
    return Path(os.path.expanduser(path))


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    p = Path(path)
    fmt = READERS.get(p.suffix.lower())
    if fmt is None:
        raise DataError(f"task 'table': {p} is neither .csv nor .parquet "
                        f"(known suffixes: {', '.join(READERS)})")
    try:
        if fmt == "parquet":
            try:
                return pd.read_parquet(p)
            except ImportError as exc:
                raise DataError(f"task 'table': reading {p} needs a Parquet engine ({exc}); "
                                "pip install pyarrow (or pip install -e '.[parquet]')") from None
        return pd.read_csv(p)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        raise DataError(f"task 'table': cannot read {p}: {type(exc).__name__}: {exc}") from None


def read_table(path: str) -> pd.DataFrame:
    """The table at `path` (cached per process while the file is unchanged)."""
    p = resolve(path)
    if not p.is_file():
        raise DataError(f"task 'table': no file {p} (resolved from path={path!r}, relative "
                        f"to {Path.cwd()})")
    st = p.stat()
    return _read(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _table_problems(path: str, mtime_ns: int, size: int, target: str, drop: tuple[str, ...],
                    kind: str, raw_x: str | None, raw_y: str | None) -> tuple[str, ...]:
    """Table.check_data for one file version (cached: a matrix checks each file once)."""
    df = _read(path, mtime_ns, size)
    return tuple(frame_problems(df, path, target, drop, kind, raw_x, raw_y))


@register_task("table")
class Table(FrameTask):
    """Your CSV/Parquet file (`path`, `target`, `kind`, `drop`): one-hot and imputation on train."""

    params = {
        "path": Param(None, str, optional=True, doc="CSV or Parquet file (required)"),
        "target": Param(None, str, optional=True, doc="the column to predict (required)"),
        "kind": Param("auto", choices=KINDS, doc="auto: see infer_kind"),
        "drop": Param("", str, doc="comma-separated columns to leave out (ids, dates)"),
        "label_noise": LABEL_NOISE, "label_noise_kind": LABEL_NOISE_KIND, "n_train": N_TRAIN,
    }

    def check(self, spec: TaskSpec) -> None:
        super().check(spec)
        missing = [k for k in ("path", "target") if spec.get(k) is None]
        if missing:
            raise RegbenchError(f"task 'table' needs {' and '.join(missing)} "
                                "(e.g. {name = \"table\", path = \"my.csv\", target = \"y\"})")

    def bind(self, spec: TaskSpec) -> Table:
        """This task with its kind settled (auto reads the target column once)."""
        self.check(spec)
        df = self.frame(spec)  # a missing file or column stops a matrix before it runs
        kind = self.param(spec, "kind")
        if kind == "auto":
            kind = infer_kind(df[spec.get("target")])
        return Table(kind)

    def frame(self, spec: TaskSpec) -> pd.DataFrame:
        """The file with the target and `drop` columns checked (errors list the columns)."""
        df = read_table(spec.get("path"))
        target = spec.get("target")
        drop = [c.strip() for c in self.param(spec, "drop").split(",") if c.strip()]
        found = ", ".join(map(str, df.columns))
        missing = [c for c in [target, *drop] if c not in df.columns]
        if missing:
            raise DataError(f"task 'table': {resolve(spec.get('path'))} has no column(s) "
                            f"{missing}; columns found: {found}")
        if len(df.columns) - 1 - len(set(drop) - {target}) < 1:
            raise DataError(f"task 'table': no feature columns left after target={target!r} "
                            f"and drop={drop}; columns found: {found}")
        return df

    def check_available(self, data_dir: Path | None) -> None:
        """The file is checked per spec (in `bind` and `load`); nothing to do without one."""

    def check_data(self, spec: TaskSpec, data_dir: Path | None,
                   standardize: frozenset[str] = frozenset({"xy"})) -> list[str]:
        """The file's values: numeric features and a regression target finite (a missing
        value is imputed, or its row dropped, but inf is refused), and small enough to
        standardize (or, fed raw, to fit float32)."""
        bound = self.bind(spec)
        p = resolve(spec.get("path"))
        st = p.stat()
        drop = tuple(sorted({c.strip() for c in self.param(spec, "drop").split(",")
                             if c.strip()}))
        return list(_table_problems(str(p), st.st_mtime_ns, st.st_size, spec.get("target"),
                                    drop, bound.kind, raw_mode(standardize, target=False),
                                    raw_mode(standardize, target=True)))

    def load(self, spec: TaskSpec, seed: int, data_dir: Path | None = None,
             standardize: str = "xy"):
        bound = self.bind(spec)
        return Task.load(bound, spec, seed, data_dir, standardize)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        df = self.frame(spec)
        target = spec.get("target")
        drop = {c.strip() for c in self.param(spec, "drop").split(",") if c.strip()}
        n_train = spec.get("n_train")
        # the split depends on the seed and target only: not on where the file lies (a CSV
        # and its Parquet copy split alike), nor on n_train / label_noise
        return frame_arrays(df, "task 'table'", target, drop, self.kind, seed,
                            f"table|{target}", None if n_train is None else int(n_train))
