"""What an `openml` task entry names, resolved: the OpenML task's type and target, the
dataset's name, version, md5 and licence, its columns and cached files.

`resolve` reads the records in the cache and, when `download` allows, fetches what is
missing through the client (task description, dataset description, features and the ARFF
file, whose md5 the client checks against the published one); the dataset's table is read
once so the client writes its fast cache copy before any worker reads it. `Source.problems`
checks the entry against what was found (data id, version, kind, target).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.errors import DataError
from regbench.openml_data import cache, client

# OpenML task types regbench trains (openml.tasks.TaskType), and the kind each gives
KIND_OF_TYPE = {1: "classification", 2: "regression"}
# feature data types (features.xml) -> the kind a target of that type gives
KIND_OF_COLUMN = {"nominal": "classification", "string": "classification",
                  "numeric": "regression"}
COLUMNS_SHOWN = 20


class NotCached(DataError):
    """The data is not in the cache and may not be downloaded (offline, or a check)."""


@dataclass(frozen=True)
class Entry:
    """The OpenML fields of a task spec (`openml` task parameters)."""

    task_id: int | None = None
    data_id: int | None = None
    target: str | None = None
    version: int | None = None
    kind: str = "auto"

    @staticmethod
    def of(params: dict[str, Any]) -> Entry:
        return Entry(params.get("task_id"), params.get("data_id"), params.get("target"),
                     params.get("version"), params.get("kind", "auto"))

    def label(self) -> str:
        return f"OpenML task {self.task_id}" if self.task_id is not None \
            else f"OpenML dataset {self.data_id}"


@dataclass(frozen=True)
class Source:
    """An entry resolved against the cache: task record (or None) and dataset record."""

    entry: Entry
    task: dict[str, Any] | None
    data: dict[str, Any]
    folder: Path  # the client's cache folder of the server

    @property
    def data_id(self) -> int:
        return int(self.data["data_id"])

    @property
    def target(self) -> str:
        return str(self.task["target"] if self.task else self.entry.target)

    def where(self) -> str:
        """`OpenML task 3 (dataset 3 kr-vs-kp, version 1)`: how messages name it."""
        ds = f"dataset {self.data_id} {self.data['name']}, version {self.data['version']}"
        if self.task:
            return f"OpenML task {self.task['task_id']} ({ds})"
        return f"OpenML {ds}"

    def kind(self) -> str:
        """classification or regression: the entry's, else the task type's, else by the
        target column's type. A DataError when none applies."""
        if self.entry.kind != "auto":
            return self.entry.kind
        if self.task:
            return KIND_OF_TYPE[int(self.task["task_type_id"])]
        col_type = self.data.get("columns", {}).get(self.target)
        if col_type not in KIND_OF_COLUMN:
            raise DataError(f"{self.where()}: target {self.target!r} is a {col_type} column; "
                            "write kind = \"classification\" or \"regression\" in the entry")
        return KIND_OF_COLUMN[col_type]

    def problems(self) -> list[str]:
        """Where the entry disagrees with OpenML: one line each."""
        e, out = self.entry, []
        columns = list(self.data.get("columns", {}))
        if self.task and e.data_id is not None and int(e.data_id) != self.data_id:
            out.append(f"{self.where()}: the task's dataset is {self.data_id}, the entry says "
                       f"data_id={e.data_id}")
        if e.version is not None and int(e.version) != int(self.data["version"]):
            out.append(f"{self.where()}: the dataset is version {self.data['version']}, the "
                       f"entry says version={e.version}")
        if self.task and e.kind != "auto" \
                and e.kind != KIND_OF_TYPE[int(self.task["task_type_id"])]:
            out.append(f"{self.where()}: a {self.task['task_type']} task, the entry says "
                       f"kind={e.kind!r}")
        if self.target not in columns:
            shown = ", ".join(columns[:COLUMNS_SHOWN]) + (
                f" and {len(columns) - COLUMNS_SHOWN} more" if len(columns) > COLUMNS_SHOWN
                else "")
            whose = "the task's target" if self.task else "target"
            out.append(f"{self.where()}: {whose} {self.target!r} is not a column; columns: "
                       f"{shown}")
        return out

    def verify(self) -> None:
        """A DataError when the cached data file's md5 differs from the published one."""
        md5 = self.data.get("md5")
        if not md5:
            return
        path = self.folder / self.data["files"]["data"]
        got = cache.md5_file(path)
        if got != md5:
            raise DataError(f"{self.where()}: the cached file {path} has md5 {got}, OpenML "
                            f"publishes {md5}: the file is corrupt; download it again with "
                            "`regbench fetch`")

    def provenance(self) -> dict[str, Any]:
        """What a cell stores about its data (its `data_source` artifact)."""
        d = self.data
        out = {"source": "openml", "server": d.get("server"), "data_id": self.data_id,
               "name": d["name"], "version": int(d["version"]), "md5": d.get("md5"),
               "licence": d.get("licence"), "target": self.target,
               "rows": d.get("n_rows")}
        if self.task:
            out.update(task_id=int(self.task["task_id"]), task_type=self.task["task_type"])
        return out


def task_record(folder: Path, task_id: int, download: bool) -> dict[str, Any]:
    """The record of an OpenML task (type, dataset, target), fetched if allowed."""
    found = cache.read_record(folder, "task", task_id)
    if found is not None:
        return found
    what = f"OpenML task {task_id}"
    if not download:
        raise NotCached(f"{what} is not in the cache {folder}")
    import openml

    def get() -> Any:
        try:
            return openml.tasks.get_task(task_id, download_splits=False)
        except NotImplementedError as exc:  # the client's word for a type it cannot build
            raise DataError(f"{what} is of a type regbench cannot train ({exc}); it trains "
                            "supervised classification (type 1) and supervised regression "
                            "(type 2) tasks") from None

    task = client.call(what, get)
    type_id = int(task.task_type_id.value)
    if type_id not in KIND_OF_TYPE:
        raise DataError(f"{what} is a {task.task_type} task (type {type_id}); regbench trains "
                        "supervised classification (type 1) and supervised regression (type 2) "
                        "tasks")
    record = {"task_id": task_id, "task_type_id": type_id, "task_type": str(task.task_type),
              "data_id": int(task.dataset_id), "target": str(task.target_name),
              "server": cache.server(), "files": {}}
    cache.write_record(folder, "task", task_id, record)
    return record


def dataset_record(folder: Path, data_id: int, download: bool,
                   refresh: bool = False) -> dict[str, Any]:
    """The record of an OpenML dataset, fetched (`refresh`: again) if allowed: the client
    checks the ARFF file's md5 as it downloads it, and reads the table once."""
    found = None if refresh else cache.read_record(folder, "data", data_id)
    if found is not None:
        return found
    what = f"OpenML dataset {data_id}"
    if not download:
        raise NotCached(f"{what} is not in the cache {folder}")
    import openml

    ds = client.call(what, lambda: openml.datasets.get_dataset(
        data_id, download_data=True, download_qualities=False,
        download_features_meta_data=True, force_refresh_cache=refresh))
    if str(ds.format).lower() != "arff":
        raise DataError(f"{what} ({ds.name}) is stored as {ds.format}; regbench reads dense "
                        "ARFF tables")
    data_file = Path(str(ds.data_file))
    if ds.md5_checksum and cache.md5_file(data_file) != ds.md5_checksum:
        raise DataError(f"{what} ({ds.name}): the downloaded file {data_file} does not match "
                        f"the published md5 {ds.md5_checksum}")
    frame, *_ = client.call(what, lambda: ds.get_data(dataset_format="dataframe"))
    # the client's layout: one folder per dataset with its description, features and data;
    # all three must stay for an offline read to need no server
    files = {"description": data_file.parent / "description.xml",
             "features": data_file.parent / "features.xml", "data": data_file}
    record = {"data_id": data_id, "name": str(ds.name), "version": int(ds.version),
              "md5": ds.md5_checksum, "licence": ds.licence, "format": str(ds.format),
              "default_target": ds.default_target_attribute, "upload_date": ds.upload_date,
              "server": cache.server(), "n_rows": int(len(frame)),
              "columns": {f.name: f.data_type for f in ds.features.values()},
              "files": {k: p.relative_to(folder).as_posix() for k, p in files.items()
                        if p.is_file()}}
    cache.write_record(folder, "data", data_id, record)
    return record


def entry_kind(entry: Entry, folder: Path, download: bool) -> str:
    """classification or regression, from as little as tells: the entry's `kind`, else the
    task's type (its small description), else the target column's type in the dataset's
    features (its record when cached, else the features alone, without the data file)."""
    if entry.kind != "auto":
        return entry.kind
    if entry.task_id is not None:
        return KIND_OF_TYPE[int(task_record(folder, int(entry.task_id), download)
                                ["task_type_id"])]
    data_id = int(entry.data_id or 0)
    found = cache.read_record(folder, "data", data_id)
    if found is not None:
        return Source(entry, None, found, folder).kind()
    what = f"OpenML dataset {data_id}"
    if not download:
        raise NotCached(f"{what} is not in the cache {folder}")
    import openml

    ds = client.call(what, lambda: openml.datasets.get_dataset(
        data_id, download_data=False, download_qualities=False,
        download_features_meta_data=True))
    columns = {f.name: f.data_type for f in ds.features.values()}
    meta = {"data_id": data_id, "name": str(ds.name), "version": int(ds.version),
            "columns": columns}
    return Source(entry, None, meta, folder).kind()


def resolve(entry: Entry, folder: Path, download: bool, refresh: bool = False) -> Source:
    """The entry's task and dataset records (fetched as `download` allows)."""
    task = task_record(folder, int(entry.task_id), download) \
        if entry.task_id is not None else None
    data_id = int(task["data_id"]) if task else int(entry.data_id or 0)
    return Source(entry, task, dataset_record(folder, data_id, download, refresh), folder)
