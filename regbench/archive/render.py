"""`python -m regbench.report --from results.zip --out DIR`: re-render an archive's report.

The archive is unpacked into a temporary folder and every file checked against its MANIFEST
before anything is loaded or rendered (a file that fails is one line, exit 2); then the
report is rendered with `--no-run` from the archived store, matrix file and plugin sources,
under the command line recorded when the archive was made. The tables come out byte for
byte as the archive's own, and the figures and report.html too under the same plotting
packages' versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from regbench.archive import manifest
from regbench.archive.build import FORMAT
from regbench.errors import RegbenchError

# options the archive decides: giving one with --from is refused
DECIDED = (("--store", "store"), ("--matrix", "matrix"), ("--plugin", "plugin"),
           ("--add-regularizer", "add_regularizer"), ("--device", "device"))


def _safe(name: str) -> bool:
    """A member name that stays inside the folder it is unpacked into."""
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name \
        and ":" not in p.parts[0]


def unpack(archive: Path, folder: Path) -> None:
    """Every file of the zip `archive` into `folder` (member names checked first)."""
    where = f"archive {archive}"
    if archive.is_dir():
        raise RegbenchError(f"--from {archive} is a directory; give the .zip file "
                            f"`regbench archive` wrote")
    if not archive.is_file():
        raise RegbenchError(f"--from {archive}: no such file")
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            bad = [m.filename for m in members if not _safe(m.filename)]
            if bad:
                raise RegbenchError(f"{where} holds a path outside the archive ({bad[0]!r}); "
                                    f"nothing was unpacked or rendered")
            for m in members:
                dest = folder / m.filename
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise RegbenchError(f"{where} is not a readable zip file ({exc}); nothing was "
                            f"rendered") from None
    if not (folder / manifest.MANIFEST).is_file():
        raise RegbenchError(f"{where} has no MANIFEST: it is not an archive of "
                            f"`regbench archive`; nothing was rendered")


def read_info(folder: Path, where: str) -> dict[str, Any]:
    """archive.json, checked: its layout version and the suite version it was made under."""
    from regbench import SUITE_VERSION

    try:
        info = json.loads((folder / "archive.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegbenchError(f"{where}: archive.json cannot be read ({exc}); nothing was "
                            f"rendered") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise RegbenchError(f"{where} has archive format {info.get('format')!r}, this regbench "
                            f"reads format {FORMAT}; nothing was rendered")
    if info.get("suite_version") != SUITE_VERSION:
        raise RegbenchError(f"{where} was made under suite version "
                            f"{info.get('suite_version')!r} (regbench {info.get('regbench')}); "
                            f"this regbench is suite version {SUITE_VERSION!r}: render it with "
                            f"that regbench; nothing was rendered")
    return info


def report_args(args: argparse.Namespace, folder: Path, info: dict[str, Any]) -> None:
    """Point `args` at the unpacked store, matrix and plugins, as the archive recorded."""
    from regbench import matrix

    m = info.get("matrix", {})
    builtin = m.get("builtin")
    args.matrix = builtin if builtin in matrix.names() else str(folder / m["file"])
    args.store = str(folder / info["store"])
    args.plugin = [str(folder / p) for p in info.get("plugins", [])] + list(
        info.get("modules", []))
    args.add_regularizer = list(info.get("add_regularizer", []))
    args.no_run = True
    args.report_command = info.get("report_command")


def run_from(args: argparse.Namespace) -> int:
    """Verify, unpack and render the archive `args.from_archive` into `args.out`."""
    from regbench.report.cli import build_parser, run

    archive = Path(args.from_archive)
    defaults = build_parser().parse_args([])
    given = [flag for flag, attr in DECIDED if getattr(args, attr) != getattr(defaults, attr)]
    if given:
        raise RegbenchError(f"--from {archive} takes the store, the matrix and the plugins "
                            f"from the archive; drop {', '.join(given)}")
    with tempfile.TemporaryDirectory(prefix="regbench-from-") as tmp:
        folder = Path(tmp)
        unpack(archive, folder)
        manifest.verify(folder, f"archive {archive}")
        info = read_info(folder, f"archive {archive}")
        report_args(args, folder, info)
        modules = str(folder / "plugins" / "modules")
        sys.path.insert(0, modules)
        try:
            return run(args)
        finally:
            if modules in sys.path:
                sys.path.remove(modules)
