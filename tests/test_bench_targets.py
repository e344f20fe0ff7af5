"""regbench.bench.cpu.target_lines: the issue-16 targets judged from one run's rows."""

from __future__ import annotations

from typing import Any

from regbench.bench.cpu import OPTIM_TARGETS, target_lines


def _row(op: str, impl: str, baseline: str | None, dtype: str, numel: int, median_s: float,
         ratio_vs_native: float | None = None, ratio_vs_copy: float | None = None,
         threads: int = 1) -> dict[str, Any]:
    return dict(op=op, impl=impl, baseline=baseline, dtype=dtype, numel=numel,
                threads=threads, median_s=median_s, ratio_vs_native=ratio_vs_native,
                ratio_vs_copy=ratio_vs_copy)


def test_dropout_targets_met_and_missed() -> None:
    rows = [_row("dropout_fwd", "fused", "F.dropout", "bf16", 2**24, 1e-2, 0.05, 4.26),
            _row("dropout_fwd", "fused", "F.dropout", "fp32", 2**20, 1e-3, 0.05, 1.2),
            _row("dropout_call", "fused", "F.dropout", "fp32", 16, 2.6e-6, 0.3)]
    lines = target_lines(rows)
    assert "bf16 dropout fwd / copy_, 16M, 1 thread(s): 4.26x (target <= 1.5x): MISSED by 2.84x" \
        in lines
    assert "fp32 dropout fwd / copy_, 1M (in cache), 1 thread(s): 1.20x (target <= 1.5x): met" \
        in lines
    assert "fixed cost of K.dropout, us, 1 thread(s): 2.60 us (target <= 3 us): met" in lines


def test_optim_targets_judge_the_speedup_over_their_own_baseline() -> None:
    (op, impl, base), need = next(iter(OPTIM_TARGETS.items()))
    el = [(k, v) for k, v in OPTIM_TARGETS.items() if k[0] == "optim_sgd_elastic"][0]
    rows = [_row(op, impl, base, "fp32", 2**23, 4e-3, ratio_vs_native=1 / 1.04, threads=2),
            _row(op, impl, base, "fp32", 2**23, 4e-3, ratio_vs_native=1 / 0.9),
            _row(el[0][0], el[0][1], el[0][2], "fp32", 2**23, 4e-3, ratio_vs_native=1 / 6.3),
            # a row whose (op, impl, baseline) has no target is not judged
            _row(op, impl, "something else", "fp32", 2**23, 4e-3, ratio_vs_native=0.5)]
    lines = [x for x in target_lines(rows) if x.startswith("FusedSGD")]
    assert lines == [
        f"{impl} vs {base}, fp32 8M, 1 thread(s): 0.90x faster (target >= {need}x): "
        "MISSED by 1.11x",
        f"{el[0][1]} vs {el[0][2]}, fp32 8M, 1 thread(s): 6.30x faster (target >= 3.0x): met",
        f"{impl} vs {base}, fp32 8M, 2 thread(s): 1.04x faster (target >= {need}x): met",
    ]


def test_measure_pair_times_both_sides_in_alternating_rounds() -> None:
    import time

    from regbench.bench.measure import measure_pair

    order: list[str] = []

    def slow() -> None:
        order.append("b")
        time.sleep(2e-3)

    def fast() -> None:
        order.append("o")
        time.sleep(5e-4)

    (tb, iqr_b), (to, iqr_o) = measure_pair(slow, fast, threads=1, min_time=0.06, rounds=3)
    assert tb > to > 0 and iqr_b >= 0 and iqr_o >= 0
    assert 2 < tb / to < 8
    # after the warm-up (b, o, b, o) the rounds alternate: b... o... b... o... b... o...
    runs = [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k]
    assert runs == ["b", "o"] * (2 + 3)
