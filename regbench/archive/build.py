"""`regbench archive --out results.zip`: a store, its report, its matrix, its plugins' source
and the environment in one zip with a MANIFEST of sha256 checksums.

Everything is checked before the zip is written: the output (a folder, an existing file
without `--force`, a folder that cannot be written), the store (missing, damaged, of a
newer schema), the matrix, and every plugin file against the sha256 its cells recorded.
The archive is assembled in a temporary folder, zipped beside `--out` and renamed onto it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import sqlite3
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from regbench.archive import manifest, plugin_files
from regbench.errors import RegbenchError, StoreError
from regbench.out_file import check_writable, replacing

FORMAT = 1  # archive.json's layout version
STORE = "store/results.sqlite"


def copy_store(src: Path, dest: Path) -> None:
    """A checkpointed, self-contained copy of the store `src` (what its -wal holds included),
    at the current schema, that passes SQLite's full integrity check; `src` is only read."""
    from regbench.store import Store
    from regbench.store.check import check_store
    from regbench.store.db import connect_ro, inspect
    from regbench.store.faults import sqlite_line

    if not src.is_file():
        raise StoreError(f"no store at {src}; run `regbench run` first or pass --store")
    if inspect(src) is None:  # refuses a damaged, foreign or newer-schema store
        raise StoreError(f"{src} is an empty SQLite file, not a regbench store yet; nothing "
                         f"was archived")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        con, out = connect_ro(src), sqlite3.connect(dest)
        try:
            con.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(sqlite_line(exc, src)) from None
    Store(dest, log=lambda _: None).close()  # an older schema is upgraded (in the copy)
    for bak in dest.parent.glob(f"{dest.name}.v*.bak*"):
        bak.unlink()
    report = check_store(dest)
    if not report.intact:
        raise StoreError(f"store {src} fails SQLite's integrity check "
                         f"({'; '.join(report.integrity[:2])}); nothing was archived. Run "
                         f"`regbench check --store {src}`")


def environment(folder: Path) -> None:
    """`regbench doctor`'s screen and every installed distribution's version."""
    from regbench.doctor import report

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doctor.txt").write_text(report() + "\n", encoding="utf-8")
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions[name] = dist.version
    (folder / "packages.txt").write_text(
        "".join(f"{k}=={versions[k]}\n" for k in sorted(versions, key=str.lower)),
        encoding="utf-8")


def render_report(args: argparse.Namespace, store: Path, out: Path) -> str:
    """The report of `store` with no run, into `out`; its command line (for archive.json)."""
    from regbench.report.cli import build_parser, report_command, run

    argv = ["--matrix", args.matrix, "--store", str(store), "--out", str(out), "--no-run",
            "--no-progress"]
    for p in args.plugin:
        argv += ["--plugin", p]
    for r in args.add_regularizer:
        argv += ["--add-regularizer", r]
    ns = build_parser().parse_args(argv)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            run(ns)
    except RegbenchError as exc:
        raise RegbenchError(f"the report of store {args.store} cannot be rendered: "
                            f"{str(exc).replace(str(store), str(args.store))}; nothing was "
                            f"archived") from None
    finally:
        for line in said.getvalue().splitlines():
            if not line.startswith(f"report: {out}"):  # where it went: inside the archive
                print(line.replace(str(store), str(args.store)))
    return report_command(ns)


def zip_folder(folder: Path, out: Path) -> int:
    """Zip every file under `folder` (MANIFEST first) into `out`; the number of files."""
    names = [manifest.MANIFEST, *manifest.files_under(folder)]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(folder / name, name)
    return len(names)


def build(args: argparse.Namespace) -> int:
    """`regbench archive`: check, assemble, zip; the exit status."""
    from regbench import SUITE_VERSION, __version__, matrix
    from regbench.provenance import now
    from regbench.store import SCHEMA_VERSION
    from regbench.store.db import connect_ro

    out, store = Path(args.out), Path(args.store)
    if out.suffix.lower() != ".zip":
        raise RegbenchError(f"--out {out}: an archive is a .zip file; name it NAME.zip")
    check_writable(out, "--out", args.force)
    m = matrix.get(args.matrix)  # an unknown name or a bad file stops here
    if args.add_regularizer:
        matrix.add_regularizers(m, args.add_regularizer)
    with tempfile.TemporaryDirectory(prefix="regbench-archive-") as tmp:
        stage = Path(tmp) / "archive"
        copy_store(store, stage / STORE)
        con = connect_ro(stage / STORE)
        try:
            code = plugin_files.verified(plugin_files.stored_sources(con))
        finally:
            con.close()
        layout = plugin_files.layout(args.matrix, code)  # and the plugins the matrix loaded
        command = render_report(args, stage / STORE, stage / "report")
        for arcname, data in layout.files.items():
            (stage / arcname).parent.mkdir(parents=True, exist_ok=True)
            (stage / arcname).write_bytes(data)
        environment(stage / "environment")
        info: dict[str, Any] = {
            "format": FORMAT, "regbench": __version__, "suite_version": SUITE_VERSION,
            "schema_version": SCHEMA_VERSION, "created_at": now(), "store": STORE,
            "source_store": str(store.resolve()), "report": "report",
            "report_command": command, "add_regularizer": list(args.add_regularizer),
            **plugin_files.describe(layout)}
        (stage / "archive.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n",
                                            encoding="utf-8")
        manifest.write(stage)
        with replacing(out, suffix=".zipping") as part:
            n = zip_folder(stage, part)
    sources = sum(1 for k in layout.files if k.endswith(".py"))
    print(f"archive {out}: {n} files (the store, its report, matrix {m.name!r}, {sources} "
          f"plugin source file(s), the environment) with sha256 checksums in MANIFEST; "
          f"re-render it with `python -m regbench.report --from {out} --out DIR`")
    return 0
