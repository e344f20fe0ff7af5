"""A block's `tune = {...}` table, checked: the budget, the sampler, the seeds, the lr range
and the cocktail members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regbench.errors import MatrixError
from regbench.tuning.samplers import SAMPLERS

TUNE_KEYS = ("trials", "sampler", "batch", "tune_seeds", "test_seeds", "lr", "cocktail")
SAMPLER_NAMES = tuple(SAMPLERS)
MAX_TRIALS = 10_000
MAX_SEEDS = 1_000


@dataclass(frozen=True)
class TuneConfig:
    """How every entry of a block is tuned: `trials` configurations each (the same budget
    for all), asked `batch` at a time from `sampler`, each run on `tune_seeds` seeds; the
    selected configuration then runs on `test_seeds` other seeds. `lr`: the learning rate's
    range (None: [lr / 10, 10 x lr] of the task's protocol). `cocktail`: members of a joint
    on/off search, an entry of its own (empty: none)."""

    trials: int
    sampler: str = "tpe"
    batch: int = 4
    tune_seeds: int = 1
    test_seeds: int = 5
    lr: tuple[float, float] | None = None
    cocktail: tuple[Any, ...] = ()

    @property
    def test_seed_indices(self) -> range:
        """The seeds of the final and baseline cells: 0.. (shared with grid cells)."""
        return range(self.test_seeds)

    @property
    def tune_seed_indices(self) -> range:
        """The seeds of the trial cells: after the test seeds, so the two never overlap."""
        return range(self.test_seeds, self.test_seeds + self.tune_seeds)

    @staticmethod
    def parse(d: Any, where: str) -> TuneConfig:
        """The checked config of a block's `tune` table; a MatrixError naming the field and
        what is allowed otherwise."""
        if not isinstance(d, dict):
            raise MatrixError(f"{where}: tune must be a table like {{trials = 16, sampler = "
                              f"\"tpe\"}}, got {d!r}")
        bad = sorted(set(d) - set(TUNE_KEYS))
        if bad:
            raise MatrixError(f"unknown key(s) {bad} in {where} tune; valid choices: "
                              f"{', '.join(TUNE_KEYS)}")
        if "trials" not in d:
            raise MatrixError(f"{where}: tune needs trials (the budget: configurations per "
                              "entry, an integer >= 1)")
        trials = _int(d, "trials", 1, MAX_TRIALS, where)
        sampler = d.get("sampler", "tpe")
        if sampler not in SAMPLER_NAMES:
            raise MatrixError(f"{where}: tune sampler={sampler!r} is not allowed; valid "
                              f"choices: {', '.join(SAMPLER_NAMES)}")
        batch = _int(d, "batch", 1, MAX_TRIALS, where, default=min(4, trials))
        tune_seeds = _int(d, "tune_seeds", 1, MAX_SEEDS, where, default=1)
        test_seeds = _int(d, "test_seeds", 1, MAX_SEEDS, where, default=5)
        lr = d.get("lr")
        if lr is not None:
            from regbench.tuning.space import lr_space

            space = lr_space(1.0, lr, f"{where} tune")
            lr = (space.lo, space.hi)
        cocktail = d.get("cocktail", [])
        if not isinstance(cocktail, list) or not cocktail and "cocktail" in d:
            raise MatrixError(f"{where}: tune cocktail={cocktail!r} is not allowed; allowed: "
                              "a non-empty list of regularizer names (or tables with fixed "
                              "parameters)")
        return TuneConfig(trials, sampler, batch, tune_seeds, test_seeds, lr,
                          tuple(_frozen(c) for c in cocktail))

    def describe(self) -> str:
        """`16 trials (tpe, batches of 4), 1 tuning seed, 5 test seeds`."""
        return (f"{self.trials} trials ({self.sampler}, batches of {self.batch}), "
                f"{self.tune_seeds} tuning seed{'s' * (self.tune_seeds != 1)}, "
                f"{self.test_seeds} test seed{'s' * (self.test_seeds != 1)}")


def _int(d: dict[str, Any], key: str, lo: int, hi: int, where: str,
         default: int | None = None) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise MatrixError(f"{where}: tune {key}={value!r} is not allowed; allowed: an "
                          f"integer >= {lo} and <= {hi}")
    return value


def _frozen(entry: Any) -> Any:
    """A cocktail member as given, made hashable (a table becomes sorted pairs)."""
    if isinstance(entry, dict):
        return tuple(sorted(entry.items()))
    return entry
