"""A fake OpenML server for the tests: the REST API's XML answers and ARFF files for small
tasks and datasets that a test makes, served from 127.0.0.1 by a thread.

It answers what the `openml` client asks for (every request is logged in `requests`):

- `GET /api/v1/xml/task/{id}`: the task (type, source dataset, target);
- `GET /api/v1/xml/data/{id}`: the dataset description (name, version, licence, md5 of the
  ARFF file, its URL; no parquet URL, so the client takes the checksummed ARFF);
- `GET /api/v1/xml/data/features/{id}` and `.../data/qualities/{id}`;
- `GET /data/v1/download/{id}/{name}.arff`: the data file.

An unknown id is answered as OpenML does (HTTP 412 and an `oml:error`: code 151 for a task,
111 for a dataset). `fail` makes a path prefix answer 500 (an HTML page, as a proxy would)
or hang until the server stops (a timeout); `corrupt` serves a data file whose bytes differ
from its published md5. Answers are gzip-encoded, as OpenML's are.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pandas as pd

NS = 'xmlns:oml="http://openml.org/openml"'
TASK_TYPES = {1: "Supervised Classification", 2: "Supervised Regression", 5: "Clustering",
              7: "Survival Analysis"}


def _nominal(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def arff_text(name: str, frame: pd.DataFrame) -> str:
    """`frame` as an ARFF file: categorical / object columns nominal, the rest numeric,
    NaN and None written as `?`."""
    lines = [f"@RELATION '{name}'", ""]
    nominal: dict[str, list[str]] = {}
    for col in frame.columns:
        s = frame[col]
        if _nominal(s):
            values = sorted({str(v) for v in s.dropna()})
            nominal[col] = values
            lines.append(f"@ATTRIBUTE '{col}' {{{','.join(values)}}}")
        else:
            lines.append(f"@ATTRIBUTE '{col}' NUMERIC")
    lines += ["", "@DATA"]
    for row in frame.itertuples(index=False):
        cells = []
        for col, v in zip(frame.columns, row):
            missing = v is None or (isinstance(v, float) and math.isnan(v))
            cells.append("?" if missing else str(v) if col in nominal else repr(float(v)))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@dataclass
class FakeDataset:
    data_id: int
    name: str
    frame: pd.DataFrame
    target: str | None
    version: int = 1
    licence: str = "CC0"
    arff: str = ""

    def __post_init__(self) -> None:
        self.arff = arff_text(self.name, self.frame)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.arff.encode()).hexdigest()

    def description(self, base: str) -> str:
        target = (f"<oml:default_target_attribute>{escape(self.target)}"
                  "</oml:default_target_attribute>" if self.target else "")
        return (f"<oml:data_set_description {NS}>"
                f"<oml:id>{self.data_id}</oml:id><oml:name>{escape(self.name)}</oml:name>"
                f"<oml:version>{self.version}</oml:version>"
                "<oml:description>made by a test</oml:description>"
                "<oml:format>ARFF</oml:format>"
                "<oml:upload_date>2024-01-01T00:00:00</oml:upload_date>"
                f"<oml:licence>{escape(self.licence)}</oml:licence>"
                f"<oml:url>{base}/data/v1/download/{self.data_id}/{self.name}.arff</oml:url>"
                f"<oml:file_id>{self.data_id}</oml:file_id>{target}"
                f"<oml:version_label>{self.version}</oml:version_label>"
                "<oml:visibility>public</oml:visibility><oml:status>active</oml:status>"
                f"<oml:md5_checksum>{self.md5}</oml:md5_checksum>"
                "</oml:data_set_description>")

    def features(self) -> str:
        parts = []
        for i, col in enumerate(self.frame.columns):
            s = self.frame[col]
            nominal = _nominal(s)
            values = "".join(f"<oml:nominal_value>{escape(str(v))}</oml:nominal_value>"
                             for v in sorted({str(v) for v in s.dropna()})) if nominal else ""
            parts.append(
                f"<oml:feature><oml:index>{i}</oml:index><oml:name>{escape(str(col))}</oml:name>"
                f"<oml:data_type>{'nominal' if nominal else 'numeric'}</oml:data_type>{values}"
                f"<oml:is_target>{'true' if col == self.target else 'false'}</oml:is_target>"
                "<oml:is_ignore>false</oml:is_ignore>"
                "<oml:is_row_identifier>false</oml:is_row_identifier>"
                f"<oml:number_of_missing_values>{int(s.isna().sum())}"
                "</oml:number_of_missing_values></oml:feature>")
        return f"<oml:data_features {NS}>{''.join(parts)}</oml:data_features>"

    def qualities(self) -> str:
        q = {"NumberOfInstances": len(self.frame), "NumberOfFeatures": self.frame.shape[1],
             "NumberOfMissingValues": int(self.frame.isna().sum().sum())}
        if self.target and _nominal(self.frame[self.target]):
            q["NumberOfClasses"] = int(self.frame[self.target].nunique())
        body = "".join(f"<oml:quality><oml:name>{k}</oml:name><oml:value>{v}</oml:value>"
                       "</oml:quality>" for k, v in q.items())
        return f"<oml:data_qualities {NS}>{body}</oml:data_qualities>"


@dataclass
class FakeTask:
    task_id: int
    data_id: int
    target: str
    task_type: int = 1

    def xml(self, base: str) -> str:
        kind = TASK_TYPES[self.task_type]
        procedure = (
            '<oml:input name="estimation_procedure"><oml:estimation_procedure>'
            "<oml:id>1</oml:id><oml:type>crossvalidation</oml:type>"
            f"<oml:data_splits_url>{base}/api_splits/get/{self.task_id}/splits.arff"
            "</oml:data_splits_url>"
            '<oml:parameter name="number_repeats">1</oml:parameter>'
            '<oml:parameter name="number_folds">10</oml:parameter>'
            '<oml:parameter name="stratified_sampling">true</oml:parameter>'
            "</oml:estimation_procedure></oml:input>") if self.task_type in (1, 2) else ""
        target = (f"<oml:target_feature>{escape(self.target)}</oml:target_feature>"
                  if self.task_type in (1, 2, 7) else "")
        return (f"<oml:task {NS}><oml:task_id>{self.task_id}</oml:task_id>"
                f"<oml:task_name>Task {self.task_id}</oml:task_name>"
                f"<oml:task_type_id>{self.task_type}</oml:task_type_id>"
                f"<oml:task_type>{kind}</oml:task_type>"
                '<oml:input name="source_data"><oml:data_set>'
                f"<oml:data_set_id>{self.data_id}</oml:data_set_id>{target}"
                f"</oml:data_set></oml:input>{procedure}</oml:task>")


def _error(code: int, message: str) -> str:
    return (f"<oml:error {NS}><oml:code>{code}</oml:code>"
            f"<oml:message>{message}</oml:message></oml:error>")


@dataclass
class FakeOpenML:
    """The server's content and behaviour; `start()` serves it, `stop()` ends it."""

    datasets: dict[int, FakeDataset] = field(default_factory=dict)
    tasks: dict[int, FakeTask] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)  # path prefix -> "500" | "hang"
    corrupt: set[int] = field(default_factory=set)  # data ids whose file bytes are wrong
    _server: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api(self) -> str:
        """The value of the client's `server` setting."""
        return f"{self.base}/api/v1/xml"

    def add_dataset(self, data_id: int, name: str, frame: pd.DataFrame,
                    target: str | None = None, **kw: object) -> FakeDataset:
        ds = FakeDataset(data_id, name, frame, target, **kw)
        self.datasets[data_id] = ds
        return ds

    def add_task(self, task_id: int, data_id: int, target: str, task_type: int = 1) -> FakeTask:
        t = FakeTask(task_id, data_id, target, task_type)
        self.tasks[task_id] = t
        return t

    def fail(self, prefix: str, how: str) -> None:
        """Requests whose path starts with `prefix` answer 500 (`how="500"`) or never
        (`how="hang"`, until stop())."""
        self.failing[prefix] = how

    def answer(self, path: str) -> tuple[int, str]:
        """(status, body) for a GET of `path`."""
        for prefix, how in self.failing.items():
            if path.startswith(prefix):
                if how == "hang":
                    self._stopping.wait(60)
                return 500, "<html><body>500 Internal Server Error</body></html>"
        if m := re.fullmatch(r"/api/v1/xml/task/(\d+)", path):
            t = self.tasks.get(int(m[1]))
            return (200, t.xml(self.base)) if t else (412, _error(151, "Unknown task"))
        if m := re.fullmatch(r"/api/v1/xml/data/(features/|qualities/)?(\d+)", path):
            ds = self.datasets.get(int(m[2]))
            if ds is None:
                return 412, _error(111, "Unknown dataset")
            what = m[1] or ""
            return 200, (ds.features() if what == "features/" else
                         ds.qualities() if what == "qualities/" else ds.description(self.base))
        if m := re.fullmatch(r"/data/v1/download/(\d+)/.*\.arff", path):
            ds = self.datasets.get(int(m[1]))
            if ds is None:
                return 404, "not found"
            return 200, ds.arff.replace("@DATA", "@DATA\n% changed") \
                if ds.data_id in self.corrupt else ds.arff
        return 404, f"no route for {path}"

    def start(self) -> FakeOpenML:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?")[0]
                fake.requests.append(path)
                status, body = fake.answer(path)
                blob = gzip.compress(body.encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml; charset=utf-8")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    self.wfile.write(blob)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
