"""The matrix document (TOML file or built-in) and its checks: keys, types, plugins, an
upper bound on its size before anything is expanded."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.errors import MatrixError
from regbench.matrix.expand import MAX_SEEDS, Expansion, _specs, expand
from regbench.registry import TASKS
from regbench.specs import TaskSpec

MATRIX_KEYS = {"name", "description", "seeds", "blocks", "plugins"}
BLOCK_KEYS = {"tasks", "archs", "regularizers", "strengths", "protocol", "base", "tune"}
MAX_CELLS = 1_000_000  # a larger expansion is refused before it is built


@dataclass
class Matrix:
    name: str
    description: str
    seeds: int
    blocks: list[dict[str, Any]]

    @staticmethod
    def from_dict(d: dict[str, Any], source: str = "matrix") -> Matrix:
        """Check the document's structure, size and every value, then build the matrix."""
        _check_keys(d, MATRIX_KEYS, source)
        _load_plugins(d.get("plugins", []), source)
        for key in ("name", "description"):
            if key in d and not isinstance(d[key], str):
                raise MatrixError(f"{source}: {key} must be a string, got {d[key]!r}")
        blocks = d.get("blocks")
        if not isinstance(blocks, list) or not blocks:
            raise MatrixError(f"{source} has no [[blocks]] (a non-empty list of tables)")
        for i, block in enumerate(blocks):
            where = f"{source} block {i}"
            _check_keys(block, BLOCK_KEYS, where)
            for key in ("tasks", "archs", "regularizers"):
                entries = block.get(key)
                if not isinstance(entries, list) or not entries:
                    raise MatrixError(f"{where}: {key} must be a non-empty list of names or "
                                      f"tables, got {entries!r}")
            if not isinstance(block.get("base", []), list):
                raise MatrixError(f"{where}: base must be a list of regularizer tables, got "
                                  f"{block['base']!r}")
            if not isinstance(block.get("protocol", {}), dict):
                raise MatrixError(f"{where}: protocol must be a table, got "
                                  f"{block['protocol']!r}")
        seeds = d.get("seeds", 1)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise MatrixError(f"{source}: seeds must be an integer in [1, {MAX_SEEDS}], "
                              f"got {seeds!r}")
        m = Matrix(d.get("name", source), d.get("description", ""), seeds, blocks)
        m.check_size(source)
        m.expand()  # validate every name and parameter now, not mid-run
        return m

    def size_bound(self, seeds: int | None = None) -> int:
        """An upper bound on the number of cells, counted without expanding anything."""
        n_seeds = self.seeds if seeds is None else seeds
        total = 0
        for block in self.blocks:
            n_tasks = sum(_sweep_size(e) for e in block["tasks"])
            n_archs = sum(_sweep_size(e) for e in block["archs"])
            tune = block.get("tune")
            if isinstance(tune, dict):  # checked when the studies are built
                per_entry = _tune_int(tune, "trials", 1) * _tune_int(tune, "tune_seeds", 1) \
                    + 2 * _tune_int(tune, "test_seeds", 5)
                n_entries = sum(_sweep_size(e) for e in block["regularizers"]) + int(
                    bool(tune.get("cocktail")))
                total += n_tasks * n_archs * n_entries * per_entry
                continue
            n_regs = sum(_sweep_size(e) * _strength_count(e, block.get("strengths", "default"))
                         for e in block["regularizers"])
            total += n_tasks * n_archs * n_regs * n_seeds
        return total

    def check_size(self, source: str, seeds: int | None = None) -> None:
        """Refuse, before expanding, a matrix of more than MAX_CELLS cells."""
        size = self.size_bound(seeds)
        if size > MAX_CELLS:
            raise MatrixError(f"{source} would expand to up to {size:,} cells; at most "
                              f"{MAX_CELLS:,} are allowed (split it into smaller matrices)")

    @staticmethod
    def from_toml(path: str | Path) -> Matrix:
        path = Path(path)
        try:
            d = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MatrixError(f"matrix file {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise MatrixError(f"matrix file {path} is not UTF-8 text (byte "
                              f"0x{exc.object[exc.start]:02x} at offset {exc.start}); TOML "
                              f"files are UTF-8: save it as UTF-8") from None
        except OSError as exc:
            raise MatrixError(f"cannot read matrix file {path} ({exc.strerror or exc}); "
                              f"pass a readable .toml file or a built-in matrix name") from None
        except tomllib.TOMLDecodeError as exc:
            raise MatrixError(f"matrix file {path} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses once per nested array or table
            raise MatrixError(f"matrix file {path} nests arrays or tables too deeply to "
                              f"read (hundreds of levels); a matrix needs three") from None
        d.setdefault("name", path.stem)
        if isinstance(d.get("plugins"), list):  # .py paths are relative to the file
            d["plugins"] = [_plugin_path(p, path.parent) for p in d["plugins"]]
        return Matrix.from_dict(d, source=str(path))

    def task_specs(self, tasks: list[str] | None = None) -> list[TaskSpec]:
        """Every task spec the blocks name (list-valued parameters swept), in order, without
        binding any task (no data is read): what `regbench fetch` downloads."""
        out: dict[TaskSpec, None] = {}
        for block in self.blocks:
            for spec in _specs(block["tasks"], TASKS, TaskSpec):
                if not tasks or spec.name in tasks:
                    out.setdefault(spec, None)
        return list(out)

    def expand(self, seeds: int | None = None, tasks: list[str] | None = None,
               regularizers: list[str] | None = None) -> Expansion:
        """All cells (in a stable order) and the skipped combinations with reasons."""
        return expand(self, seeds, tasks, regularizers)


def _plugin_path(spec: Any, base: Path) -> Any:
    """A matrix file's plugin path made absolute (relative to the file); modules as given."""
    if isinstance(spec, str) and (spec.endswith(".py") or "/" in spec):
        return str((base / spec).resolve())
    return spec


def _load_plugins(specs: Any, source: str) -> None:
    """Load a matrix's `plugins = [...]` (before its names are checked)."""
    if not isinstance(specs, list) or not all(isinstance(p, str) for p in specs):
        raise MatrixError(f"{source}: plugins must be a list of PATH.py or module names, "
                          f"got {specs!r}")
    if specs:
        from regbench import plugins

        plugins.load(specs)


def _sweep_size(entry: Any) -> int:
    """How many specs a task/arch/regularizer entry sweeps into (1 for a bare name)."""
    if not isinstance(entry, dict):
        return 1
    size = 1
    for key, value in entry.items():
        if key not in ("strengths", "with") and isinstance(value, list):
            size *= max(len(value), 1)
    return size


def _tune_int(tune: dict[str, Any], key: str, default: int) -> int:
    value = tune.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _strength_count(entry: Any, default_set: Any) -> int:
    chosen = entry.get("strengths", default_set) if isinstance(entry, dict) else default_set
    if isinstance(chosen, list):
        return max(len(chosen), 1)
    if isinstance(chosen, str):
        return 10  # the largest built-in strength set ("full") has at most 10 entries
    return 1


def _check_keys(d: dict[str, Any], valid: set[str], where: str) -> None:
    if not isinstance(d, dict):
        raise MatrixError(f"{where} must be a table, got {d!r}")
    bad = sorted(set(d) - valid)
    if bad:
        raise MatrixError(
            f"unknown key(s) {bad} in {where}; valid choices: {', '.join(sorted(valid))}")
