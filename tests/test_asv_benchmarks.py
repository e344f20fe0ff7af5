"""Every asv benchmark runs: import each benchmarks/ module and call each benchmark once
(setup_cache, setup, the method) at the smallest parameters on the CPU, so a broken
benchmark fails the normal test suite instead of the nightly asv run."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = ("time_", "peakmem_", "mem_", "track_", "timeraw_")
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))


def _module(name: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


def _suites(mod: Any) -> list[type]:
    return [c for _, c in inspect.getmembers(mod, inspect.isclass)
            if c.__module__ == mod.__name__ and not c.__name__.startswith("_")
            and any(n.startswith(PREFIXES) for n in dir(c))]


def _smallest(cls: type) -> list[Any]:
    """First value of each parameter (sizes are listed ascending; 'cpu' before 'cuda')."""
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    return [values[0] for values in params]


def test_there_are_benchmark_modules() -> None:
    assert {"bench_kernels", "bench_matrix"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.slow
def test_every_benchmark_runs_once(name: str) -> None:
    mod = _module(name)
    suites = _suites(mod)
    assert suites, f"benchmarks/{name}.py defines no benchmark suite"
    for cls in suites:
        bench = cls()
        args = _smallest(cls)
        assert "cuda" not in args, f"{cls.__name__}: list 'cpu' before 'cuda'"
        if hasattr(bench, "setup_cache"):
            args = [bench.setup_cache(), *args]
        methods = sorted(n for n in dir(cls) if n.startswith(PREFIXES))
        for m in methods:
            if m.startswith("track_"):
                assert getattr(getattr(cls, m), "unit", None), f"{cls.__name__}.{m} has no unit"
            if hasattr(bench, "setup"):
                bench.setup(*args)
            out = getattr(bench, m)(*args)
            if m.startswith("track_"):
                assert isinstance(out, float) and out == out, f"{cls.__name__}.{m} -> {out!r}"


def test_cuda_cases_skip_without_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    mod = _module("bench_kernels")
    bench = mod.Dropout()
    data = {2**16: torch.zeros(2**16)}
    with pytest.raises(NotImplementedError):
        bench.setup(data, 2**16, "fp32", 0.5, 1, "cuda")


def test_asv_machine_name_records_the_gpu() -> None:
    from regbench.bench.asv_machine import machine_name

    host = machine_name(None)
    assert host and "/" not in host
    assert machine_name("NVIDIA H100 80GB HBM3") == f"{host}-nvidia-h100-80gb-hbm3"
