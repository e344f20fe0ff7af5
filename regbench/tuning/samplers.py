"""The samplers a `tune` block may name, all Optuna's: random, qmc (scrambled Sobol), tpe.

Each is built from a 32-bit seed that `regbench.seeding` derives from the study (so it is a
function of the matrix only). TPE asks a batch with `constant_liar` (trials asked but not yet
told count as bad ones, so one batch spreads out) after `n_startup_trials` random ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _random(seed: int, trials: int, batch: int) -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=seed)


def _qmc(seed: int, trials: int, batch: int) -> Any:
    from optuna.samplers import QMCSampler, RandomSampler

    return QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                      independent_sampler=RandomSampler(seed=seed),
                      warn_independent_sampling=False)


def startup_trials(trials: int, batch: int) -> int:
    """TPE's random start: half the budget, at least one batch, at most Optuna's default 10."""
    return min(10, max(batch, trials // 2))


def _tpe(seed: int, trials: int, batch: int) -> Any:
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed, constant_liar=True,
                      n_startup_trials=startup_trials(trials, batch))


SAMPLERS: dict[str, Callable[[int, int, int], Any]] = {
    "random": _random, "qmc": _qmc, "tpe": _tpe,
}
