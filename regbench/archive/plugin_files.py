"""Which plugin sources an archive holds, checked against the code its cells recorded, and
where each goes so that the archive re-renders on another machine.

- Every source file the store's `plugin_code` names (a plugin entry's file and the modules
  it imports from its folder) must still have the sha256 its cells recorded: a file that
  changed or is gone refuses the archive with one line.
- The matrix file goes to `matrix/`, with the plugin files it names by path laid out
  around it as they were (so its relative paths still resolve); other plugin files given
  with `--plugin` go to `plugins/files/N/`, plugin modules and entry points to
  `plugins/modules/` under their module path; source named only by stored cells goes to
  `plugins/stored/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError


@dataclass
class StoredSource:
    """A source file named by stored cells, with the sha256 they recorded for it."""

    path: str
    sha256: str
    entries: dict[str, None] = field(default_factory=dict)  # "regularizer 'x' version 1"
    cells: int = 0


def stored_sources(con: sqlite3.Connection) -> list[StoredSource]:
    """Every (file, sha256) the store's `plugin_code` values name, with who and how many."""
    found: dict[tuple[str, str], StoredSource] = {}
    rows = con.execute("SELECT plugin_code, COUNT(*) FROM cells WHERE plugin_code IS NOT NULL "
                       "AND plugin_code != '' GROUP BY plugin_code")
    for blob, n in rows:
        try:
            entries = json.loads(blob)
        except ValueError:
            continue
        for e in entries if isinstance(entries, list) else []:
            if not isinstance(e, dict):
                continue
            who = f"{e.get('kind')} {e.get('name')!r} version {e.get('version')}"
            files = [(e.get("file"), e.get("sha256"))]
            imports = e.get("imports")
            files += list(imports.items()) if isinstance(imports, dict) else []
            for path, sha in files:
                if not path or not sha:
                    continue
                s = found.setdefault((str(path), str(sha)), StoredSource(str(path), str(sha)))
                s.entries[who] = None
                s.cells += n
    return list(found.values())


def verified(sources: list[StoredSource]) -> dict[str, bytes]:
    """The content of each stored source file now, refused with one line if it is gone or
    no longer has the sha256 its cells recorded."""
    out: dict[str, bytes] = {}
    for s in sources:
        who = ", ".join(s.entries)
        try:
            data = Path(s.path).read_bytes()
        except OSError as exc:
            raise RegbenchError(
                f"plugin {who}: its {s.cells} stored cell(s) were made with {s.path}, which "
                f"cannot be read now ({exc.strerror or exc}); nothing was archived: restore "
                f"that file, or archive a store without those cells") from None
        now = hashlib.sha256(data).hexdigest()
        if now != s.sha256:
            raise RegbenchError(
                f"plugin {who}: its {s.cells} stored cell(s) were made with {s.path} at sha256 "
                f"{s.sha256[:16]}..., and that file now has sha256 {now[:16]}...; nothing was "
                f"archived: restore the file the cells were made with, or rerun them with "
                f"--force (or give the plugin a new version) and archive again")
        out[s.path] = data
    return out


@dataclass
class Layout:
    """The plugin and matrix files of an archive and how a re-render loads them."""

    files: dict[str, bytes] = field(default_factory=dict)  # path in the archive -> content
    origins: dict[str, str] = field(default_factory=dict)  # path in the archive -> source path
    plugin_args: list[str] = field(default_factory=list)  # archive paths to pass as --plugin
    modules: list[str] = field(default_factory=list)  # module names (plugins/modules on path)
    matrix: dict[str, str] = field(default_factory=dict)  # {"file": ..., "builtin": name?}

    def put(self, arcname: str, source: Path | None, data: bytes | None = None) -> None:
        if data is None:
            data = Path(source).read_bytes()  # type: ignore[arg-type]
        if arcname in self.files and self.files[arcname] != data:
            raise RegbenchError(f"two different plugin files would both be archived as "
                                f"{arcname} (from {self.origins[arcname]} and {source}); "
                                f"rename one of them")
        self.files[arcname] = data
        self.origins[arcname] = str(source) if source else "(built-in matrix)"


def _common_root(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


def _toml_plugin_paths(toml: Path) -> list[Path]:
    """The .py plugin files a matrix file names (relative to it, as `matrix` reads them)."""
    try:
        plugins = tomllib.loads(toml.read_text(encoding="utf-8")).get("plugins", [])
    except (OSError, ValueError):
        return []
    return [(toml.parent / p).resolve() for p in plugins if isinstance(p, str)
            and (p.endswith(".py") or "/" in p)] if isinstance(plugins, list) else []


def _module_root(module: str, file: Path) -> Path:
    """The folder a module is imported from: /x for pkg.mod in /x/pkg/mod.py."""
    depth = len(module.split(".")) + (file.name == "__init__.py")
    return file.parents[depth - 1]


def _package_files(module: str) -> list[Path]:
    """The `__init__.py` of each package above `module` (pkg for pkg.mod)."""
    parts = module.split(".")
    out = []
    for i in range(1, len(parts)):
        f = getattr(sys.modules.get(".".join(parts[:i])), "__file__", None)
        if f:
            out.append(Path(f).resolve())
    return out


def layout(matrix_arg: str, code: dict[str, bytes]) -> Layout:
    """Where the matrix, the loaded plugins and the stored plugin sources (`code`: path ->
    verified content) go in the archive, and how `--from` loads them."""
    from regbench import matrix, plugins

    out = Layout()

    def content(path: Path) -> bytes | None:
        return code.get(str(path))

    loaded = plugins.loaded()
    if matrix.is_file(matrix_arg):
        toml = Path(matrix_arg).resolve()
        named = set(_toml_plugin_paths(toml))
        group = [toml]
        for p in loaded:
            if p.source.kind == "file" and Path(p.source.target) in named:
                group += [Path(p.source.target), *map(Path, p.imports)]
        root = _common_root(group)
        for f in group:
            out.put(f"matrix/{f.relative_to(root).as_posix()}", f, content(f))
        out.matrix = {"file": f"matrix/{toml.relative_to(root).as_posix()}"}
    else:
        name = matrix_arg
        out.put(f"matrix/{name}.toml", None, matrix.text(name).encode())
        out.matrix = {"file": f"matrix/{name}.toml", "builtin": name}
        named = set()
    n = 0
    for p in loaded:
        if p.source.kind == "file":
            main = Path(p.source.target)
            if main in named:
                continue
            n += 1
            files = [main, *map(Path, p.imports)]
            root = _common_root(files)
            for f in files:
                out.put(f"plugins/files/{n}/{f.relative_to(root).as_posix()}", f, content(f))
            out.plugin_args.append(f"plugins/files/{n}/{main.relative_to(root).as_posix()}")
            continue
        module = sys.modules.get(p.module)
        main_file = getattr(module, "__file__", None)
        if not main_file:
            continue
        main = Path(main_file).resolve()
        root = _module_root(p.module, main)
        for f in [main, *_package_files(p.module), *map(Path, p.imports)]:
            out.put(f"plugins/modules/{f.relative_to(root).as_posix()}", f, content(f))
        out.modules.append(p.module)
    placed = set(out.origins.values())
    for path, data in code.items():
        if path not in placed:
            sha = hashlib.sha256(data).hexdigest()[:12]
            out.put(f"plugins/stored/{sha}/{Path(path).name}", Path(path), data)
    return out


def describe(out: Layout) -> dict[str, Any]:
    """What archive.json records of the layout."""
    return {"matrix": out.matrix, "plugins": out.plugin_args, "modules": out.modules,
            "sources": {k: v for k, v in sorted(out.origins.items())
                        if not k.startswith("matrix/") or v != "(built-in matrix)"}}
