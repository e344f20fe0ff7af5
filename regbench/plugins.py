"""Plugins: regularizers, architectures and tasks from outside the package.

Three ways in, as pytest has them:

- an installed package's entry points, groups `regbench.regularizers`, `regbench.archs`
  and `regbench.tasks`; an entry point's value is a module, and importing it registers its
  entries through the decorators (`REGBENCH_DISABLE_PLUGIN_AUTOLOAD=1` turns them off);
- `--plugin PATH.py|MODULE` (repeatable) on the command line;
- `plugins = ["PATH.py", "module"]` in a TOML matrix (paths relative to the TOML file).

A `.py` file is imported under a module name derived from its absolute path
(`regbench_plugin_<stem>_<hash>`), the same in every process, so what it defines pickles.
Every process that runs cells loads the same plugins: the executors pass `sources()` to
their workers, which call `worker_setup` before running a cell.

A plugin that fails to import, registers a name that exists, lacks a `version` or a
required attribute, or has a hook with the wrong signature raises a `PluginError`: one
line naming the plugin, the entry and the problem (exit 2 from the CLI), before any store
is opened. What it registered up to the error is taken back.

`cell_code(cell)` is what a stored number records of the plugin code that made it (the
store's `plugin_code` column); `changed_code(frame)` finds stored cells whose plugin source
differs from the code loaded now.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench import registry
from regbench.errors import PluginError

GROUPS = {"regbench.regularizers": "regularizer", "regbench.archs": "architecture",
          "regbench.tasks": "task"}
AUTOLOAD_ENV = "REGBENCH_DISABLE_PLUGIN_AUTOLOAD"
KINDS = {"task": registry.TASKS, "arch": registry.ARCHS, "regularizer": registry.REGULARIZERS}


@dataclass(frozen=True)
class Source:
    """Where a plugin comes from: a .py file (absolute path), a module name, or an entry
    point (its module, group, name and distribution). Picklable: workers get these."""

    kind: str  # "file" | "module" | "entry point"
    target: str  # the absolute path or the module name
    group: str = ""  # entry points: the group and the entry point's name
    name: str = ""
    dist: str = ""  # entry points: the distribution (package) that declares it
    dist_version: str = ""

    def describe(self) -> str:
        if self.kind == "file":
            return f"file {self.target}"
        if self.kind == "module":
            return f"module {self.target}"
        return f"package {self.dist} {self.dist_version} (entry point {self.group}:{self.name})"


@dataclass
class Plugin:
    """A loaded plugin: its source, module and what it registered."""

    source: Source
    module: str = ""
    entries: list[tuple[Any, str]] = field(default_factory=list)
    # the modules it imported from its own folder (a file's) or package: their source is
    # part of its code identity (entry_code's "imports")
    imports: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return self.source.describe()


_lock = threading.RLock()
_loaded: dict[Source, Plugin] = {}
_modules: dict[str, Plugin] = {}  # module name -> the plugin that imported it first
_autoloaded = False


def module_name(path: Path) -> str:
    """The stable module name of a plugin file: from its stem and absolute path."""
    path = Path(path).resolve()
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    return f"regbench_plugin_{stem}_{digest}"


def source_of(spec: str, base_dir: Path | None = None) -> Source:
    """`PATH.py` (relative to `base_dir`, default the working directory) or `MODULE`."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"a plugin must be a PATH.py or a module name, got {spec!r}")
    spec = spec.strip()
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        path = Path(spec).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if path.is_dir():
            raise PluginError(f"plugin file {path} is a directory, not a .py file")
        if not path.is_file():
            raise PluginError(f"plugin file {path} does not exist")
        return Source("file", str(path))
    if not all(part.isidentifier() for part in spec.split(".")):
        raise PluginError(f"plugin {spec!r} is neither a .py file nor a module name")
    return Source("module", spec)


def load(specs: Iterable[str] = (), base_dir: Path | None = None,
         autoload: bool = True) -> list[Plugin]:
    """Load the installed packages' entry points (unless autoload is off, or
    $REGBENCH_DISABLE_PLUGIN_AUTOLOAD is set), then each of `specs` (.py paths relative to
    `base_dir`, or module names). Loading one twice is a no-op."""
    out = []
    if autoload:
        out += load_entry_points()
    for spec in specs:
        out.append(load_source(source_of(spec, base_dir)))
    return out


def autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0")


def load_entry_points() -> list[Plugin]:
    """Every entry point of the three groups, once per process (nothing if disabled)."""
    global _autoloaded
    if autoload_disabled():
        return []
    with _lock:
        if _autoloaded:
            return [p for s, p in _loaded.items() if s.kind == "entry point"]
        _autoloaded = True
        out = []
        for group in GROUPS:
            for ep in sorted(importlib.metadata.entry_points(group=group),
                             key=lambda e: (e.name, e.value)):
                dist = getattr(ep, "dist", None)
                source = Source("entry point", ep.value.split(":")[0].strip(), group, ep.name,
                                dist.metadata["Name"] if dist else "?",
                                dist.version if dist else "?")
                out.append(load_source(source))
        return out


def load_source(source: Source) -> Plugin:
    """Import one plugin (once); a PluginError names it and the problem."""
    with _lock:
        if source in _loaded:
            return _loaded[source]
        registry._load_builtins()  # built-ins first: a plugin's names are checked against them
        name = module_name(Path(source.target)) if source.kind == "file" else source.target
        plugin = Plugin(source, name)
        if name in _modules:  # the same module through another way in: registered already
            _loaded[source] = _modules[name]
            return _modules[name]
        previous, registry._loading = registry._loading, plugin
        before = set(sys.modules)
        try:
            _import(source, name)
        except PluginError:
            _take_back(plugin)
            raise
        except BaseException as exc:
            _take_back(plugin)
            if not isinstance(exc, (Exception, SystemExit)):
                raise  # KeyboardInterrupt
            first = (str(exc).strip().splitlines() or [""])[0]
            raise PluginError(f"plugin {source.describe()} failed to import: "
                              f"{type(exc).__name__}: {first}") from None
        finally:
            registry._loading = previous
        _loaded[source] = _modules[name] = plugin
        plugin.imports = _own_imports(name, set(sys.modules) - before)
        for reg, entry in plugin.entries:  # the hash of the code as loaded, not as edited later
            _source_file(reg.get(entry))
        for path in plugin.imports:
            _sha256(path)
        return plugin


def _module_file(module: Any) -> Path | None:
    f = getattr(module, "__file__", None)
    return Path(f).resolve() if f else None


def _own_imports(name: str, imported: set[str]) -> list[str]:
    """The source files of the modules the plugin's import brought in (`imported`) from
    its own folder (a file plugin's, or a top-level module's) or its own package; not
    regbench's own modules, not the plugin module itself."""
    main = _module_file(sys.modules.get(name))
    if main is None:
        return []
    top = _module_file(sys.modules.get(name.split(".")[0]))
    root = (top or main).parent
    out = set()
    for mod_name in imported:
        if mod_name == "regbench" or mod_name.startswith("regbench."):
            continue
        f = _module_file(sys.modules.get(mod_name))
        if f is not None and f != main and f.suffix == ".py" and f.is_relative_to(root):
            out.add(str(f))
    return sorted(out)


def _on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _import(source: Source, name: str) -> None:
    """Import a plugin the same way under `regbench` and `python -m regbench`: a module
    name is looked up from the working directory too, and a file's own folder is on the
    path for what it imports beside it."""
    if source.kind == "module":
        _on_path(os.getcwd())
    if source.kind != "file":
        importlib.import_module(name)  # a no-op for a module imported before
        return
    _on_path(str(Path(source.target).parent))
    spec = importlib.util.spec_from_file_location(name, source.target)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {source.target} cannot be imported (not a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def _take_back(plugin: Plugin) -> None:
    for reg, name in plugin.entries:
        reg.unregister(name)
    plugin.entries.clear()
    if plugin.source.kind == "file":
        sys.modules.pop(plugin.module, None)


def sources() -> list[Source]:
    """The plugins loaded in this process, in load order (what workers must load too)."""
    with _lock:
        return list(dict.fromkeys(p.source for p in _loaded.values()))


@dataclass(frozen=True)
class SetupFailed:
    """What a worker returns instead of a result when it could not load the driver's
    plugins: the driver stops the run with this one line (no worker traceback)."""

    text: str

    def error(self, who: str) -> PluginError:
        return PluginError(f"{who} could not load the plugins the run loaded (an environment "
                           f"problem, not a cell's; no cell was run there): {self.text}")


def worker_setup(srcs: Iterable[Source]) -> None:
    """Load in a worker (pool process, Dask worker) the plugins the driver loaded; the
    entry points given are loaded as such, nothing else is autoloaded."""
    for source in srcs:
        load_source(source)


def loaded() -> list[Plugin]:
    """The plugins loaded in this process, each once, in load order."""
    with _lock:
        return list({id(p): p for p in _loaded.values()}.values())


# -- code identity ------------------------------------------------------------------------
_hashes: dict[str, str] = {}


def _sha256(path: str) -> str:
    if path not in _hashes:
        try:
            _hashes[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            _hashes[path] = ""
    return _hashes[path]


def _source_file(entry: Any) -> str:
    """The absolute path of the file that defines `entry` ('' if none), hashed once."""
    mod = sys.modules.get(getattr(entry, "__module__", ""))
    if mod is None or not getattr(mod, "__file__", None):
        return ""
    path = str(Path(mod.__file__).resolve())
    _sha256(path)
    return path


def entry_code(kind: str, name: str) -> dict[str, Any] | None:
    """What identifies the code of a plugin entry now (None for a built-in): kind, name,
    version, module, source file, its sha256, and the distribution for a package."""
    reg = KINDS[kind]
    plugin = reg.plugin(name)
    if plugin is None:
        return None
    entry = reg.get(name)
    module = getattr(entry, "__module__", "") or plugin.module
    path = _source_file(entry)
    code = {"kind": kind, "name": name, "version": reg.plugin_version(name),
            "module": module, "file": path, "sha256": _sha256(path) if path else "",
            "plugin": plugin.describe()}
    if plugin.imports:  # only when there are some: the code of older cells stays as it was
        code["imports"] = {p: _sha256(p) for p in plugin.imports}
    if plugin.source.kind == "entry point":
        code["dist"], code["dist_version"] = plugin.source.dist, plugin.source.dist_version
    return code


def cell_code(cell: Any) -> str | None:
    """JSON (sorted keys) of the plugin code a cell uses (task, arch, each regularizer of
    its stack); None when every entry is a built-in."""
    wanted = [("task", cell.task.name), ("arch", cell.arch.name)]
    wanted += [("regularizer", s.name) for s in cell.stack()]
    codes = [c for kind, name in dict.fromkeys(wanted) if (c := entry_code(kind, name))]
    return json.dumps(codes, sort_keys=True) if codes else None


@dataclass
class ChangedCode:
    """Stored cells made by a plugin entry whose source differs from the code loaded now."""

    kind: str
    name: str
    version: str
    cells: int

    def line(self) -> str:
        return (f"{self.cells} stored cell(s) of {self.kind} {self.name!r} version "
                f"{self.version} were made by other source code than is loaded now (kept; "
                f"bump its version to keep both apart, or rerun with --force)")


def _stored_entries(plugin_codes: Iterable[str | None]) -> Iterable[dict[str, Any]]:
    """Each cell's plugin entries, from stored `plugin_code` values (bad JSON skipped)."""
    for blob in plugin_codes:
        if not blob or not isinstance(blob, str):
            continue
        try:
            entries = json.loads(blob)
        except ValueError:
            continue
        yield from (e for e in entries if isinstance(e, dict)) if isinstance(
            entries, list) else ()


def changed_code(plugin_codes: Iterable[str | None]) -> list[ChangedCode]:
    """From stored `plugin_code` values: per plugin entry loaded now under the same
    version, how many cells were made by a source with another sha256."""
    counts: dict[tuple[str, str, str], int] = {}
    now: dict[tuple[str, str], dict[str, Any] | None] = {}
    for e in _stored_entries(plugin_codes):
        kind, name = e.get("kind"), e.get("name")
        if kind not in KINDS or name not in KINDS[kind]:
            continue
        if (kind, name) not in now:
            now[(kind, name)] = entry_code(kind, name)
        current = now[(kind, name)]
        if (current is not None and current["version"] == e.get("version")
                and (current["sha256"] != e.get("sha256")
                     or _import_hashes(current) != _import_hashes(e))):
            key = (kind, name, str(e.get("version")))
            counts[key] = counts.get(key, 0) + 1
    return [ChangedCode(k, n, v, c) for (k, n, v), c in sorted(counts.items())]


def _import_hashes(code: dict[str, Any]) -> list[str]:
    """The sha256 of each module a plugin imports from its folder, without their paths: the
    same code copied elsewhere (an archive unpacked on another machine) is the same code."""
    imports = code.get("imports")
    return sorted(str(v) for v in imports.values()) if isinstance(imports, dict) else []


def not_loaded(plugin_codes: Iterable[str | None]) -> dict[str, int]:
    """'kind name' -> stored cells using a plugin entry that is not loaded now (their code
    cannot be compared until the plugin is given)."""
    out: dict[str, int] = {}
    for e in _stored_entries(plugin_codes):
        kind, name = e.get("kind"), e.get("name")
        if kind in KINDS and name not in KINDS[kind]:
            out[f"{kind} {name}"] = out.get(f"{kind} {name}", 0) + 1
    return dict(sorted(out.items()))
