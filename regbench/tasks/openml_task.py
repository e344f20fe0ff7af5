"""An OpenML task or dataset, through the `openml` package, preprocessed like `table`.

    [[blocks]]
    tasks = [{name = "openml", task_id = 3},
             {name = "openml", data_id = 31, target = "class"}]
    archs = ["mlp"]
    regularizers = ["none", "l2", "dropout"]

A task id names OpenML's task: its dataset, its target, and by its type (supervised
classification or regression) the kind. A data id names one dataset, and `target` its
column to predict (the kind is then the target's type: nominal is classification, numeric
regression; `kind` overrides). The split is regbench's own seeded 60/20/20 split (OpenML's
cross-validation folds are not used), and the preprocessing is the `table` task's
(`regbench.tasks.frame`): train-only median imputation, one-hot categoricals (the dataset's
nominal attributes), standardization, the same data checks.

OpenML never changes the data behind a data id (a new version is a new id), so the task
or data id in the cell id pins the data; `version = N` has the dataset's version checked
and put in the cell id as well. The dataset's name, version, md5 checksum and licence are
stored with every cell (its `data_source` artifact) and listed in the report.

Data comes from the cache (`regbench.openml_data.cache`): `regbench fetch --matrix ...`
downloads it ahead, `regbench run` downloads what is missing unless offline, and cells
only ever read the cache.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

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
from regbench.tasks.frame import FrameTask, frame_arrays, frame_problems

KINDS = ("auto", "classification", "regression")


def _source(spec: TaskSpec, data_dir: Path | str | None, download: bool,
            kind_only: bool = False) -> Any:
    """The entry resolved against the cache (`regbench.openml_data.source.Source`), or with
    `kind_only` just its kind (read from the least metadata that tells)."""
    from regbench.openml_data import cache
    from regbench.openml_data.source import Entry, NotCached, entry_kind, resolve

    folder = cache.configure(data_dir)
    entry = Entry.of(dict(spec.params))
    try:
        if kind_only:
            return entry_kind(entry, folder, download=download)
        return resolve(entry, folder, download=download)
    except NotCached as exc:
        where = f" --data-dir {data_dir}" if data_dir else ""
        raise DataError(f"task {spec.label()!r}: {exc}; fetch it first with `regbench fetch "
                        f"--matrix MATRIX{where}`") from None


@functools.lru_cache(maxsize=2)
def _frame(folder: str, data_id: int, md5: str | None) -> pd.DataFrame:
    """The dataset's table (row-id and ignored attributes left out), read from the cache
    by the client; cached per process for one checksum."""
    import openml

    from regbench.openml_data import client

    def read() -> pd.DataFrame:
        ds = openml.datasets.get_dataset(data_id, download_data=True,
                                         download_qualities=False,
                                         download_features_meta_data=True)
        frame, *_ = ds.get_data(dataset_format="dataframe")
        return frame

    return client.call(f"OpenML dataset {data_id}", read)


def read_frame(src: Any) -> pd.DataFrame:
    """The table of a resolved source (`Source`)."""
    return _frame(str(src.folder), src.data_id, src.data.get("md5"))


@functools.lru_cache(maxsize=64)
def _problems(folder: str, data_id: int, md5: str | None, where: str, target: str, kind: str,
              raw_x: str | None, raw_y: str | None) -> tuple[str, ...]:
    """frame_problems of one dataset version (cached: a matrix checks each once)."""
    df = _frame(folder, data_id, md5)
    return tuple(frame_problems(df, where, target, (), kind, raw_x, raw_y))


@register_task("openml")
class OpenML(FrameTask):
    """An OpenML task (`task_id`) or dataset (`data_id` + `target`), cached; preprocessing as
    `table`."""

    params = {
        "task_id": Param(None, int, lo=1, optional=True,
                         doc="an OpenML task: its dataset, target and kind (its type)"),
        "data_id": Param(None, int, lo=1, optional=True,
                         doc="an OpenML dataset (with target); with task_id, the task's "
                             "dataset, checked"),
        "target": Param(None, str, optional=True, doc="the column to predict (with data_id)"),
        "version": Param(None, int, lo=1, optional=True,
                         doc="the dataset version the entry expects (checked)"),
        "kind": Param("auto", choices=KINDS,
                      doc="auto: by the task's type, or the target column's type"),
        "label_noise": LABEL_NOISE, "label_noise_kind": LABEL_NOISE_KIND, "n_train": N_TRAIN,
    }

    def check(self, spec: TaskSpec) -> None:
        super().check(spec)
        task_id, data_id = spec.get("task_id"), spec.get("data_id")
        if task_id is None and data_id is None:
            raise RegbenchError("task 'openml' needs task_id or data_id (e.g. {name = "
                                "\"openml\", task_id = 3} or {name = \"openml\", data_id = 31, "
                                "target = \"class\"})")
        if task_id is None and spec.get("target") is None:
            raise RegbenchError(f"task 'openml' with data_id={data_id} needs target, the "
                                "column to predict (e.g. {name = \"openml\", data_id = 31, "
                                "target = \"class\"}), or a task_id, whose task names it")
        if task_id is not None and spec.get("target") is not None:
            raise RegbenchError(f"task 'openml': task_id={task_id} names its own target; "
                                f"leave out target={spec.get('target')!r} (or give data_id "
                                "and target instead of task_id)")

    def bind(self, spec: TaskSpec) -> OpenML:
        """This task with its kind settled: the entry's `kind`, else read from the cached
        metadata (fetched first unless offline)."""
        from regbench.openml_data import cache

        self.check(spec)
        kind = self.param(spec, "kind")
        if kind == "auto":
            settings = cache.current()
            kind = _source(spec, settings.data_dir, not settings.offline, kind_only=True)
        return OpenML(kind)

    def check_available(self, data_dir: Path | None) -> None:
        """Availability is checked per spec (`check_data`); nothing to do without one."""

    def check_data(self, spec: TaskSpec, data_dir: Path | None,
                   standardize: frozenset[str] = frozenset({"xy"})) -> list[str]:
        """The cached data against the entry and OpenML's checksum (a problem each: a data
        id, version, kind or target that does not match, a corrupt file), then the
        table's values as the `table` task checks them."""
        self.check(spec)
        src = _source(spec, data_dir, download=False)
        problems = src.problems()
        if problems:
            return problems
        try:
            src.verify()
            kind = src.kind()
        except DataError as exc:
            return [str(exc)]
        return list(_problems(str(src.folder), src.data_id, src.data.get("md5"), src.where(),
                              src.target, kind, raw_mode(standardize, target=False),
                              raw_mode(standardize, target=True)))

    def source(self, spec: TaskSpec, data_dir: Path | None) -> dict[str, Any] | None:
        """The dataset's provenance: OpenML ids, name, version, md5, licence, server."""
        return _source(spec, data_dir, download=False).provenance()

    def load(self, spec: TaskSpec, seed: int, data_dir: Path | None = None,
             standardize: str = "xy"):
        self.check(spec)
        kind = self.param(spec, "kind")
        if kind == "auto":
            kind = _source(spec, data_dir, download=False, kind_only=True)
        return Task.load(OpenML(kind), spec, seed, data_dir, standardize)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        src = _source(spec, data_dir, download=False)
        n_train = spec.get("n_train")
        # the split's seed stream is the dataset's and target's: a task and the same data id
        # and target split alike
        return frame_arrays(read_frame(src), src.where(), src.target, (), self.kind, seed,
                            f"openml|{src.data_id}|{src.target}",
                            None if n_train is None else int(n_train))
