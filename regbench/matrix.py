"""Named matrices and TOML matrix files: which cells make up a benchmark run.

A matrix is a list of blocks; a block is tasks x archs x regularizers (each at its
strengths) x seeds, plus optional protocol overrides. Built-in matrices and TOML
files share one format:

    name = "mine"
    seeds = 3
    [[blocks]]
    tasks = ["curve", {name = "digits", label_noise = 0.2}]
    archs = ["mlp", {name = "mlp", width = [16, 64, 256]}]   # a list sweeps the value
    regularizers = ["none", {name = "l2", strengths = [1e-3, 1e-2]}, "dropout"]
    strengths = "default"        # for entries without their own: default | full | first
    protocol = {epochs = 20}     # overrides of the tasks' training protocol

Incompatible combinations (say label smoothing on a regression task) are skipped
explicitly, and `regbench list matrices` says why.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.errors import MatrixError, UnknownNameError
from regbench.interface import stack_conflict
from regbench.openml_data import suites
from regbench.params import finite, without_defaults
from regbench.registry import ARCHS, REGULARIZERS, TASKS, Registry
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze

MATRIX_KEYS = {"name", "description", "seeds", "blocks", "plugins"}
BLOCK_KEYS = {"tasks", "archs", "regularizers", "strengths", "protocol", "base", "tune"}
STRENGTH_SETS = ("default", "full", "first")
MAX_CELLS = 1_000_000  # a larger expansion is refused before it is built
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Skip:
    task: str
    arch: str
    regularizer: str
    reason: str


@dataclass
class Expansion:
    """A matrix's grid cells, its tuned blocks' studies (whose cells depend on stored
    results: `regbench.tuning.driver`) and the combinations it skips."""

    cells: list[Cell] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    studies: list[Any] = field(default_factory=list)  # regbench.tuning.study.Study

    def size(self) -> int:
        """Grid cells plus, per study, every trial, final and baseline cell it will make."""
        fixed = {c.cell_id for c in self.cells} | {
            c.cell_id for s in self.studies for c in s.baseline}  # baselines may be grid cells
        return len(fixed) + sum(s.config.trials * s.config.tune_seeds + s.config.test_seeds
                                for s in self.studies)


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
        for name in tasks or []:
            TASKS.get(name)
        for name in regularizers or []:
            if name != "cocktail":  # a tuned block's cocktail study
                REGULARIZERS.get(name)
        n_seeds = self.seeds if seeds is None else seeds
        if not 1 <= n_seeds <= MAX_SEEDS:
            raise MatrixError(f"--seeds must be in [1, {MAX_SEEDS}], got {n_seeds}")
        self.check_size(f"matrix {self.name!r}", n_seeds)
        out, seen_skips, seen_cells = Expansion(), set(), set()
        for i, block in enumerate(self.blocks):
            if "tune" in block:
                from regbench.tuning.build import block_studies

                studies, skipped = block_studies(block, i, tasks, regularizers)
                known = {s.name for s in out.studies}
                out.studies += [s for s in studies if s.name not in known]
                out.skipped += [s for s in skipped if s not in seen_skips]
                seen_skips.update(skipped)
                continue
            protocol = freeze(block.get("protocol", {}))
            base = _stack(block.get("base", []), f"block {i} base")
            for t, a, (r, strengths, addons) in itertools.product(
                _specs(block["tasks"], TASKS, TaskSpec), _specs(block["archs"], ARCHS, ArchSpec),
                _reg_specs(block["regularizers"], block.get("strengths", "default")),
            ):
                if tasks and t.name not in tasks or regularizers and r.name not in regularizers:
                    continue
                task, arch = TASKS.get(t.name)().bind(t), ARCHS.get(a.name)()
                reg_cls = REGULARIZERS.get(r.name)
                proto = task.protocol.override(protocol)
                check_composable((*base, r, *addons))
                reason = arch.skip_reason(a, task) or next(
                    (why for s in (*base, r, *addons)
                     if (why := REGULARIZERS.get(s.name).skip_reason(task, arch, s))), None)
                if reason:
                    label = " + ".join([r.label(), *(s.label() for s in addons)])
                    if base:
                        label += " on " + " + ".join(s.label() for s in base)
                    skip = Skip(t.label(), a.label(), label, reason)
                    if skip not in seen_skips:
                        seen_skips.add(skip)
                        out.skipped.append(skip)
                    continue
                for s in (*base, *addons):
                    REGULARIZERS.get(s.name).check_protocol(s, proto)
                for strength in strengths:
                    spec = RegSpec(r.name, float(strength), r.params, r.version)
                    reg_cls.check(spec)
                    reg_cls.check_protocol(spec, proto)
                    for seed in range(n_seeds):
                        cell = Cell(t, a, spec, seed, protocol, base=base, addons=addons)
                        if cell.cell_id not in seen_cells:
                            seen_cells.add(cell.cell_id)
                            out.cells.append(cell)
        return out


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


def _entry(entry: str | dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        params = {k: v for k, v in entry.items() if k != "name"}
        return entry["name"], params
    article = "an" if kind[:1] in "aeiou" else "a"
    raise MatrixError(f"{article} {kind} entry must be a name or a table with 'name', "
                      f"got {entry!r}")


def _sweep(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product over list-valued parameters."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _specs(entries: list[Any], registry: Registry, spec_type: type) -> list[Any]:
    """Task or arch specs of a block, list-valued parameters swept, each one checked."""
    specs = []
    for e in entries:
        name, params = _entry(e, registry.kind)
        entry = registry.get(name)()
        for p in _sweep(params):
            entry.check(spec_type(name, freeze(p)))
            spec = spec_type(name, freeze(without_defaults(p, getattr(entry, "params", {}))),
                             version=registry.plugin_version(name))
            specs.append(spec)
    return specs


def _reg_specs(entries: list[Any], default_set: str
               ) -> list[tuple[RegSpec, tuple[float, ...], tuple[RegSpec, ...]]]:
    """(entry spec without strength, its strengths, its `with` stack) per swept entry."""
    out = []
    for e in entries:
        name, params = _entry(e, "regularizer")
        cls = REGULARIZERS.get(name)
        addons = _stack(params.pop("with", []), f"regularizer {name!r} with")
        chosen = params.pop("strengths", default_set)
        if isinstance(chosen, str):
            if chosen not in STRENGTH_SETS:
                raise UnknownNameError("strength set", chosen, STRENGTH_SETS)
            strengths = {"default": cls.default_strengths, "full": cls.full_strengths,
                         "first": cls.default_strengths[:1]}[chosen]
        else:
            values = chosen if isinstance(chosen, list) else [chosen]
            bad = [v for v in values if not finite(v)]
            if bad or not values:
                raise MatrixError(f"regularizer {name!r}: strengths must be a strength set "
                                  f"({', '.join(STRENGTH_SETS)}) or a non-empty list of "
                                  f"numbers, got {chosen!r}")
            strengths = tuple(float(s) for s in values)
        for swept in _sweep(params):  # a list-valued parameter sweeps, as for tasks/archs
            spec = RegSpec(name, 0.0, freeze(swept), REGULARIZERS.plugin_version(name))
            for s in strengths:
                cls.check(RegSpec(name, s, spec.params))
            out.append((spec, strengths, addons))
    return out


def _stack(entries: Any, where: str) -> tuple[RegSpec, ...]:
    """A base recipe or `with` list: regularizer tables with one `strength` each (a bare
    name takes the regularizer's first default strength)."""
    if not isinstance(entries, list):
        raise MatrixError(f"{where} must be a list of regularizer tables, got {entries!r}")
    specs = []
    for e in entries:
        name, params = _entry(e, "regularizer")
        cls = REGULARIZERS.get(name)
        if "strengths" in params:
            raise MatrixError(f"{where}: {name!r} takes one `strength`, not `strengths` "
                              "(a stack element is not swept)")
        if "with" in params:
            raise MatrixError(f"{where}: {name!r} cannot have its own `with` list")
        strength = params.pop("strength", (cls.default_strengths or (0.0,))[0])
        if not finite(strength):
            raise MatrixError(f"{where}: {name!r} strength must be a number, got {strength!r}")
        listed = [k for k, v in params.items() if isinstance(v, list)]
        if listed:
            raise MatrixError(f"{where}: {name!r} parameter(s) {listed} are lists; a stack "
                              "element has one value per parameter")
        spec = RegSpec(name, float(strength), freeze(params), REGULARIZERS.plugin_version(name))
        cls.check(spec)
        specs.append(spec)
    return tuple(specs)


def check_composable(stack: tuple[RegSpec, ...]) -> None:
    """Refuse a stack with a duplicate, or two regularizers that own the same part of the
    training setup (the step, the optimizer, what is evaluated...); `none` composes with
    everything."""
    problem = stack_conflict((s.name, s.label(), REGULARIZERS.get(s.name)) for s in stack)
    if problem:
        raise MatrixError(problem)


# The core twelve: every one on every default task, at two strengths, in `default`.
ALL_REGULARIZERS = [
    "none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm", "early_stopping",
    "augment", "more_data", "stochastic_depth", "label_smoothing",
]
# Regularizers written on the training-step hooks (mixed targets, an owned step, an averaged
# evaluated model).
STEP_REGULARIZERS = ["mixup", "sam", "swa"]
# The field's regularizers beyond the twelve first built-ins (Regularization Cocktails, seed
# 002, the dropout paper), written on the same hooks.
FIELD_REGULARIZERS = ["dropconnect", "max_norm", "cutout", "cutmix", "lookahead",
                      "adversarial", "snapshot_ensemble"]
DEFAULT_TASKS = ["curve", "periodic", "digits", "breast_cancer", "diabetes"]
VISION_REGULARIZERS = ["none", "l2", "weight_decay", "adamw", "dropout", "batchnorm", "augment",
                       "label_smoothing", "stochastic_depth"]

# The MNIST-1D paper's recipe (notebooks/train.py of the mnist1d repository): Adam lr 1e-2,
# batch 100, 8000 steps = 200 epochs of 4000 samples; inputs as the package scales them.
MNIST1D_PAPER_PROTOCOL = {"epochs": 200, "batch_size": 100, "optimizer": "adam", "lr": 1e-2,
                          "standardize": "none"}
# The deep-double-descent recipe (mnist1d notebook, Understanding Deep Learning 8.4):
# 4000 train / 12000 test samples, 15% of train labels resampled, no validation split.
DOUBLE_DESCENT_TASK = {"name": "mnist1d", "num_samples": 16000, "train_split": 0.25,
                       "label_noise": 0.15, "val_fraction": 0.0}
DOUBLE_DESCENT_WIDTHS = (2, 3, 5, 8, 12, 18, 27, 40, 60, 90, 135, 200, 300)  # ~x1.5 steps
# Regularization Cocktails' question on regbench's small tasks: each regularizer alone, and
# on a usual recipe. stochastic_depth needs residual blocks (not in an mlp).
COCKTAIL_TASKS = ["breast_cancer", "diabetes", "digits", "mnist1d"]
COCKTAIL_REGULARIZERS = [r for r in ALL_REGULARIZERS + STEP_REGULARIZERS + FIELD_REGULARIZERS
                         if r != "stochastic_depth"]
COCKTAIL_BASE = [{"name": "weight_decay", "strength": 1e-4},
                 {"name": "augment", "kind": "noise", "strength": 0.05}]
# The standard CIFAR recipe (He et al. 2016): weight decay 5e-4 and 4-pixel crop + flip.
CIFAR_BASE_RECIPE = [{"name": "weight_decay", "strength": 5e-4},
                     {"name": "augment", "kind": "crop_flip", "strength": 0.0}]
BATCHNORM_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# Srivastava et al. (2014) sec. 5.1 pair max-norm with dropout so that a large learning rate
# cannot blow the weights up; at the tasks' own Adam lr 1e-3 c = 3 never binds.
MAX_NORM_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)

# Equal-budget tuning (DomainBed, AlgoPerf, Regularization Cocktails) on the small real
# tasks: every regularizer that applies to an mlp, `none` included, gets the same 16 trials
# over its declared space and the learning rate; the grid block beside it is the fixed
# grid's view of the same settings (two default strengths at the protocol's lr), for the
# claim that compares the two rankings.
TUNED_TASKS = ["digits", "breast_cancer", "diabetes", "mnist1d"]
TUNED_REGULARIZERS = [r for r in ALL_REGULARIZERS + STEP_REGULARIZERS + FIELD_REGULARIZERS
                      if r != "stochastic_depth"]
TUNED_COCKTAIL = ["dropout", "weight_decay", "mixup", "label_smoothing", "swa", "lookahead"]
TUNED_BUDGET = {"trials": 16, "sampler": "tpe", "batch": 4, "tune_seeds": 1, "test_seeds": 5}

# OpenML-CC18 with the core regularizers (regbench.openml_data.suites: the fixed task list
# with each dataset's shape). The data comes from the OpenML cache (`regbench fetch`).
CC18_REGULARIZERS = ALL_REGULARIZERS
CC18_DESCRIPTION = (f"OpenML-CC18 (OpenML suite {suites.CC18_SUITE_ID}, task list written "
                    f"{suites.CC18_TAKEN})")

BUILTIN: dict[str, dict[str, Any]] = {
    "smoke": {
        "description": "every regularizer once on two small tasks, 2 seeds (under a minute)",
        "seeds": 2,
        "blocks": [
            {"tasks": ["curve", {"name": "digits", "n_train": 300}],
             "archs": [{"name": "mlp", "width": 32, "depth": 2}],
             "regularizers": [r for r in ALL_REGULARIZERS + STEP_REGULARIZERS
                              + FIELD_REGULARIZERS if r != "stochastic_depth"],
             "strengths": "first", "protocol": {"epochs": 20}},
            {"tasks": [{"name": "digits", "n_train": 300}],
             "archs": [{"name": "resmlp", "width": 32, "depth": 2}],
             "regularizers": ["none", "stochastic_depth", "shake_drop"],
             "strengths": "first", "protocol": {"epochs": 20}},
        ],
    },
    "default": {
        "description": ("all tasks but bikes, the 12 core regularizers at their 2 default "
                        "strengths, the 11 others once on digits, 5 seeds"),
        "seeds": 5,
        "blocks": [
            {"tasks": DEFAULT_TASKS, "archs": ["mlp"], "regularizers": ALL_REGULARIZERS},
            {"tasks": ["periodic", "digits"], "archs": ["resmlp"],
             "regularizers": ["none", "stochastic_depth"]},
            # the CNN cells are the dearest (~3 s each): one strength ("full" has the rest)
            {"tasks": ["digits"], "archs": ["cnn"],
             "regularizers": ["none", "l2", "dropout", "batchnorm", "augment"],
             "strengths": "first"},
            # the same dropout cells with our fused kernel: gaps should agree, speeds differ;
            # one strength is enough to check the variants agree (report's variant check)
            {"tasks": ["periodic", "digits"], "archs": ["mlp"],
             "regularizers": [{"name": "dropout", "backend": "fused"}], "strengths": "first"},
            # penalties and decay folded into the fused optimizer step (regbench.optim):
            # the same training up to rounding, so metrics should agree with the native rows
            {"tasks": ["periodic", "digits"], "archs": ["mlp"],
             "regularizers": [{"name": n, "backend": "fused"}
                              for n in ("l1", "l2", "weight_decay", "adamw")],
             "strengths": "first"},
            # the field's regularizers beyond the core twelve, at their first default strength on
            # digits only (~40 CPU-s in all), so that `default` stays under 5 minutes on two
            # cores; `full` sweeps them on every default task
            {"tasks": ["digits"], "archs": ["mlp"],
             "regularizers": STEP_REGULARIZERS + FIELD_REGULARIZERS, "strengths": "first"},
            {"tasks": ["digits"], "archs": ["resmlp"], "regularizers": ["shake_drop"],
             "strengths": "first"},
            # MNIST-1D with the paper's three baselines, 20 epochs (~100 CPU-s in all)
            {"tasks": ["mnist1d"], "archs": ["linear", "mlp_residual", "cnn1d"],
             "regularizers": ["none", "dropout", "batchnorm"], "strengths": "first",
             "protocol": {"epochs": 20}},
        ],
    },
    "full": {
        "description": "every strength of seed 004's sweeps, all tasks but bikes, 10 seeds (hours)",
        "seeds": 10,
        "blocks": [
            {"tasks": DEFAULT_TASKS, "archs": ["mlp", "resmlp"],
             "regularizers": ALL_REGULARIZERS + STEP_REGULARIZERS + FIELD_REGULARIZERS
             + ["shake_drop"],
             "strengths": "full"},
            {"tasks": ["curve"], "archs": ["wide", {"name": "linear", "poly": [4, 19]}],
             "regularizers": ["none", "l2", "dropout"], "strengths": "full"},
            {"tasks": ["digits"], "archs": ["cnn"],
             "regularizers": ["none", "l2", "dropout", "batchnorm", "augment",
                              {"name": "augment", "kind": "rotate_crop"}],
             "strengths": "full"},
            # seed 001's other batchnorm placement, and MNIST-1D's own augmentation
            {"tasks": DEFAULT_TASKS, "archs": ["mlp"],
             "regularizers": [{"name": "batchnorm", "position": "after"}],
             "strengths": "full"},
            {"tasks": ["mnist1d"], "archs": ["mlp", "cnn1d"],
             "regularizers": ["none", {"name": "augment", "kind": "roll_scale"}],
             "strengths": "full", "protocol": {"epochs": 20}},
        ],
    },
    "mnist1d-paper": {
        "description": "the MNIST-1D paper's baseline table: logistic, MLP, CNN; Adam 1e-2, "
                       "batch 100, 8000 steps, all 4000 train samples, 5 seeds",
        "seeds": 5,
        "blocks": [
            {"tasks": [{"name": "mnist1d", "val_fraction": 0.0}],
             "archs": ["linear", "mlp_residual", "cnn1d"], "regularizers": ["none"],
             "protocol": MNIST1D_PAPER_PROTOCOL},
        ],
    },
    "double-descent": {
        "description": "MNIST-1D deep double descent: 2-hidden-layer ReLU MLP over width 2-300, "
                       "15% resampled labels, SGD 500 epochs; plain, weight decay, dropout",
        "seeds": 3,
        "blocks": [
            {"tasks": [DOUBLE_DESCENT_TASK],
             "archs": [{"name": "mlp", "depth": 2, "activation": "relu",
                        "width": list(DOUBLE_DESCENT_WIDTHS)}],
             "regularizers": ["none", {"name": "weight_decay", "strengths": [1e-3]},
                              {"name": "dropout", "strengths": [0.1]}],
             "protocol": {"epochs": 500, "batch_size": 100, "optimizer": "sgd", "lr": 0.01,
                          "momentum": 0.9}},
        ],
    },
    "batchnorm-lr": {
        "description": "plain vs batchnorm 3x64 ReLU MLP on MNIST-1D over an SGD lr sweep "
                       "(momentum 0.9, 30 epochs): which lrs reach a target loss, which diverge",
        "seeds": 3,
        "blocks": [
            {"tasks": ["mnist1d"],
             "archs": [{"name": "mlp", "depth": 3, "width": 64, "activation": "relu"}],
             "regularizers": ["none", "batchnorm"],
             "protocol": {"epochs": 30, "batch_size": 100, "optimizer": "sgd", "lr": lr,
                          "momentum": 0.9}}
            for lr in BATCHNORM_LRS
        ],
    },
    "vision": {
        "description": "the standard vision sets from --data-dir: MNIST and Fashion-MNIST with "
                       "mlp/cnn, CIFAR-10 with resnet20, 5 seeds (for a GPU or a cluster)",
        "seeds": 5,
        "blocks": [
            {"tasks": ["mnist", "fashion_mnist"], "archs": ["mlp", "cnn"],
             "regularizers": VISION_REGULARIZERS},
            {"tasks": ["cifar10"], "archs": [{"name": "resnet", "depth": 20}],
             "regularizers": [r if r != "augment" else
                              {"name": "augment", "kind": "crop_flip", "strengths": [0.0]}
                              for r in VISION_REGULARIZERS]},
            # the recipe every CIFAR paper trains with, under every cell, `none` included:
            # does X help on top of weight decay 5e-4 + crop and flip?
            {"tasks": ["cifar10"], "archs": [{"name": "resnet", "depth": 20}],
             "base": CIFAR_BASE_RECIPE,
             "regularizers": ["none", "l2", "dropout", "label_smoothing", "stochastic_depth",
                              *STEP_REGULARIZERS]},
        ],
    },
    "max-norm-lr": {
        "description": "dropout 0.5 alone and with max-norm c = 3 and c = 1 (Srivastava et "
                       "al. 2014, sec. 5.1) on digits / mlp over an SGD lr sweep (momentum "
                       "0.95, 30 epochs): where the constraint binds and what it buys",
        "seeds": 5,
        "blocks": [
            {"tasks": ["digits"], "archs": ["mlp"],
             "regularizers": ["none", {"name": "dropout", "strengths": [0.5]},
                              *({"name": "dropout", "strengths": [0.5],
                                 "with": [{"name": "max_norm", "strength": c}]}
                                for c in (3.0, 1.0))],
             "protocol": {"epochs": 30, "optimizer": "sgd", "lr": lr, "momentum": 0.95}}
            for lr in MAX_NORM_LRS
        ],
    },
    "cocktails": {
        "description": "every regularizer alone and on a base recipe (weight decay 1e-4 + "
                       "input noise 0.05) on the tabular, digits and MNIST-1D tasks, "
                       "dropout + max-norm as a stack, 5 seeds",
        "seeds": 5,
        "blocks": [
            {"tasks": COCKTAIL_TASKS, "archs": ["mlp"],
             "regularizers": [*COCKTAIL_REGULARIZERS,
                              {"name": "dropout", "with": [{"name": "max_norm",
                                                            "strength": 3.0}]}],
             "protocol": {"epochs": 20}},
            {"tasks": COCKTAIL_TASKS, "archs": ["mlp"], "base": COCKTAIL_BASE,
             "regularizers": [r for r in COCKTAIL_REGULARIZERS
                              if r not in ("weight_decay", "adamw", "augment")],
             "protocol": {"epochs": 20}},
        ],
    },
    "tuned": {
        "description": "every regularizer that applies to an mlp (none included) tuned at an "
                       "equal budget of 16 TPE trials over its space and the lr, 5 test seeds, "
                       "plus a cocktail search (Kadra et al. 2021), on digits, breast_cancer, "
                       "diabetes and MNIST-1D (20 epochs); beside it the grid of 2 default "
                       "strengths at the protocol lr",
        "seeds": 5,
        "blocks": [
            {"tasks": TUNED_TASKS, "archs": ["mlp"], "regularizers": TUNED_REGULARIZERS,
             "protocol": {"epochs": 20}},
            {"tasks": [t for t in TUNED_TASKS if t != "diabetes"], "archs": ["mlp"],
             "regularizers": TUNED_REGULARIZERS, "protocol": {"epochs": 20},
             "tune": {**TUNED_BUDGET, "cocktail": TUNED_COCKTAIL}},
            # a cocktail lists only members every task of its block can run: no label
            # smoothing on a regression task
            {"tasks": ["diabetes"], "archs": ["mlp"], "regularizers": TUNED_REGULARIZERS,
             "protocol": {"epochs": 20},
             "tune": {**TUNED_BUDGET,
                      "cocktail": [r for r in TUNED_COCKTAIL if r != "label_smoothing"]}},
        ],
    },
    "openml-cc18": {
        "description": f"{CC18_DESCRIPTION}: all {len(suites.CC18)} tasks, the 12 core "
                       "regularizers at their 2 default strengths on an mlp, 5 seeds (about 3-4 "
                       "hours on two cores; regbench fetch downloads the data)",
        "seeds": 5,
        "blocks": [{"tasks": [t.entry() for t in suites.CC18], "archs": ["mlp"],
                    "regularizers": CC18_REGULARIZERS}],
    },
    "cc18-small": {
        "description": f"{CC18_DESCRIPTION}: the {len(suites.small())} tasks of at most "
                       f"{suites.SMALL_MAX_CELLS:,} rows x features, the 12 core regularizers at "
                       "their 2 default strengths on an mlp, 5 seeds (about an hour on two "
                       "cores)",
        "seeds": 5,
        "blocks": [{"tasks": [t.entry() for t in suites.small()], "archs": ["mlp"],
                    "regularizers": CC18_REGULARIZERS}],
    },
    "seeds": {
        "description": "seed-to-seed spread: three cells on periodic, 20 seeds each",
        "seeds": 20,
        "blocks": [
            {"tasks": ["periodic"], "archs": ["mlp"],
             "regularizers": ["none", {"name": "l2", "strengths": [1e-3]},
                              {"name": "dropout", "strengths": [0.1]}]},
        ],
    },
}


def names() -> list[str]:
    return list(BUILTIN)


def get(name_or_path: str) -> Matrix:
    """A built-in matrix by name, or a matrix from a .toml file."""
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return Matrix.from_toml(name_or_path)
    if name_or_path not in BUILTIN:
        raise UnknownNameError("matrix (or a .toml file)", name_or_path, BUILTIN)
    return Matrix.from_dict({"name": name_or_path, **BUILTIN[name_or_path]}, source=name_or_path)


def add_regularizers(m: Matrix, names: list[str]) -> Matrix:
    """`m` with the regularizers `names` (at their default strengths) added to every block
    that has `none`: a new regularizer beside the built-ins on the same tasks and seeds."""
    for name in names:
        if not REGULARIZERS.get(name).default_strengths:
            raise MatrixError(f"regularizer {name!r} declares no default_strengths to add")
    blocks = []
    for block in m.blocks:
        regs = list(block["regularizers"])
        have = {_entry(e, "regularizer")[0] for e in regs}
        if "none" in have:
            regs += [{"name": n, "strengths": list(REGULARIZERS.get(n).default_strengths)}
                     for n in names if n not in have]
        blocks.append({**block, "regularizers": regs})
    if blocks == m.blocks:
        raise MatrixError(f"matrix {m.name!r} has no block with 'none' (and without "
                          f"{', '.join(names)}) to add {', '.join(names)} to")
    return Matrix.from_dict({"name": m.name, "description": m.description
                             + f" (+ {', '.join(names)})", "seeds": m.seeds,
                             "blocks": blocks}, source=m.name)
