"""regbench.bench.pytest_json: pytest-benchmark JSON -> bench rows -> store -> throughput figure."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from regbench.bench.pytest_json import BenchImportError, load_pytest_benchmark_json, main
from regbench.store import BENCH_COLUMNS, Store

N = 2**20


def _bench(op: str, impl: str, role: str, median: float, nbytes: int | None) -> dict[str, Any]:
    return {
        "group": f"{op} numel=1M", "name": f"test_{impl}", "fullname": f"x::test_{impl}",
        "params": None,
        "extra_info": {"op": op, "impl": impl, "role": role, "dtype": "fp32", "numel": N,
                       "threads": 2, "device": "cpu", "bytes": nbytes,
                       "backend": "avx2" if role == "ours" else "native"},
        "stats": {"min": median * 0.9, "max": median * 1.2, "mean": median, "median": median,
                  "q1": median * 0.95, "q3": median * 1.05, "iqr": median * 0.1,
                  "rounds": 10, "iterations": 1},
    }


@pytest.fixture
def bench_json(tmp_path: Path) -> Path:
    doc = {
        "machine_info": {"node": "box", "cpu": {"brand_raw": "Some CPU", "count": 2},
                         "regbench": {"cpu_model": "Some CPU", "cpu_count": 2, "threads": 2,
                                      "gpu": None}},
        "commit_info": {"id": "abc123", "dirty": True},
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.1.0",
        "benchmarks": [
            _bench("dropout_fwd", "copy_", "copy", 1e-3, 8 * N),
            _bench("dropout_fwd", "fused", "ours", 2e-3, 8 * N),
            _bench("dropout_fwd", "F.dropout", "native", 8e-3, 8 * N),
            _bench("dropout_fwd", "compile(F.dropout)", "native", 4e-3, 8 * N),
            _bench("l2", "fused l2_", "ours", 1e-3, None),
            _bench("l2", "torch._foreach_*", "native", 3e-3, None),
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    return path


def test_rows_have_the_store_format_and_ratios(bench_json: Path) -> None:
    rows = load_pytest_benchmark_json(bench_json)
    assert all(set(r) <= set(BENCH_COLUMNS) for r in rows)
    # copy + 2 fused rows (one per native baseline) + 2 natives + 1 l2 fused + 1 l2 native
    assert len(rows) == 7
    fused = {r["baseline"]: r for r in rows if r["impl"] == "fused"}
    assert fused["F.dropout"]["ratio_vs_native"] == pytest.approx(0.25)
    assert fused["compile(F.dropout)"]["ratio_vs_native"] == pytest.approx(0.5)
    assert fused["F.dropout"]["ratio_vs_copy"] == pytest.approx(2.0)
    assert fused["F.dropout"]["gbps"] == pytest.approx(8 * N / 2e-3 / 1e9)
    assert fused["F.dropout"]["backend"] == "avx2"
    copy = next(r for r in rows if r["impl"] == "copy_")
    assert copy["op"] == "copy" and copy["ratio_vs_copy"] == pytest.approx(1.0)
    l2 = next(r for r in rows if r["impl"] == "fused l2_")
    assert l2["ratio_vs_native"] == pytest.approx(1 / 3) and l2["gbps"] is None
    assert all(r["git_commit"] == "abc123+dirty" for r in rows)
    assert rows[0]["machine"]["cpu_model"] == "Some CPU"
    assert not any(math.isnan(r["median_s"]) for r in rows)


def test_store_roundtrip_and_figure(bench_json: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite"
    assert main([str(bench_json), "--store", str(store_path)]) == 0
    with Store(store_path) as store:
        frame = store.bench_frame()
    assert len(frame) == 7 and set(frame.op) == {"copy", "dropout_fwd", "l2"}
    from regbench.report import fig_kernels

    figs = fig_kernels.kernel_figures(frame, tmp_path / "fig", ["png"])
    assert figs and all(Path(f).exists() for fig in figs for f in fig.files)


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmarks": [{"name": "t", "stats": {"median": 1.0}}]}))
    with pytest.raises(BenchImportError, match="extra_info"):
        load_pytest_benchmark_json(bad)
    (tmp_path / "nojson.json").write_text("{")
    assert main([str(tmp_path / "nojson.json"), "--dry-run"]) == 2
    assert main([str(tmp_path / "missing.json"), "--dry-run"]) == 2
