"""The equal-budget ranking claim: its permutation test against brute force, its floor,
and "not run" on a store without the `tuned` matrix."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from regbench import claims
from regbench.store import Store


def brute_force(grid: np.ndarray, budget: np.ndarray) -> tuple[float, float]:
    """Written apart from the claim: every within-setting swap, distance 1 - tau."""
    def dist(a: np.ndarray, b: np.ndarray) -> float:
        return 1 - stats.kendalltau(a.mean(0), b.mean(0)).statistic

    observed = dist(grid, budget)
    count = 0
    for swap in itertools.product([False, True], repeat=len(grid)):
        a = np.array([b_ if s else g for g, b_, s in zip(grid, budget, swap)])
        b = np.array([g if s else b_ for g, b_, s in zip(grid, budget, swap)])
        d = dist(a, b)  # NaN: every mean rank tied in a view, no disagreement
        count += int((0.0 if np.isnan(d) else d) >= observed - 1e-12)
    return 1 - observed, count / 2 ** len(grid)


def random_ranks(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.array([stats.rankdata(rng.normal(size=k)) for _ in range(n)])


@pytest.mark.parametrize("seed", range(4))
def test_ranking_change_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    grid = random_ranks(rng, 5, 7)
    budget = grid + rng.normal(scale=1.5, size=grid.shape)  # a noisy copy, re-ranked
    budget = np.array([stats.rankdata(row) for row in budget])
    tau, p, total = claims.ranking_change(grid, budget)
    want_tau, want_p = brute_force(grid, budget)
    assert total == 32
    assert tau == pytest.approx(want_tau, abs=1e-12) and p == pytest.approx(want_p, abs=1e-12)


def test_identical_views_give_tau_1_and_p_1_and_the_floor_is_2_over_2_to_the_n():
    grid = random_ranks(np.random.default_rng(0), 4, 6)
    tau, p, total = claims.ranking_change(grid, grid)
    assert tau == pytest.approx(1.0, abs=1e-12) and (p, total) == (1.0, 16)
    reversed_views = claims.ranking_change(grid, 7 - grid)
    assert reversed_views[1] >= 2 / 16  # never below the floor, however different


@pytest.mark.slow  # 2 x 20 000 sampled swaps: about 12 s
def test_many_settings_are_sampled_deterministically():
    rng = np.random.default_rng(1)
    grid, budget = random_ranks(rng, 18, 5), random_ranks(rng, 18, 5)
    first, again = claims.ranking_change(grid, budget), claims.ranking_change(grid, budget)
    assert first == again and first[2] == 20_000 and 0 < first[1] <= 1


def test_the_claim_is_not_run_without_the_tuned_matrix(tmp_path):
    with Store(tmp_path / "empty.sqlite") as store:
        df = claims.claims_frame(store, ["equal-budget-ranking"])
    assert list(df.reproduced) == ["not run"]
    assert "cells missing" in df.note.iloc[0]
    assert claims.CLAIMS.get("equal-budget-ranking").source == "Choi et al. 2019"
