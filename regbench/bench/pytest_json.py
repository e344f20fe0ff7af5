"""Import `pytest --benchmark-json` output into the results store's `bench` table.

    python -m pytest tests/bench --benchmark-only --benchmark-json=bench.json
    python -m regbench.bench.pytest_json bench.json --store .regbench/results.sqlite
    python -m regbench.report --no-run      # the throughput figure now draws these rows

Each benchmark of `tests/bench/` names itself in `extra_info` (op, impl, role = ours |
native | copy, dtype, numel, threads, device, bytes moved). The ratios are computed between
benchmarks of one JSON file, i.e. of one process run, exactly as `regbench bench` does:
ours / each native baseline of the same (op, dtype, numel, threads, device), one row per
baseline, and every row / the `copy_` of the same size (the bandwidth roofline).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROLES = ("ours", "native", "copy")
_KEY = ("dtype", "numel", "threads", "device")


class BenchImportError(ValueError):
    """The file is not pytest-benchmark JSON of regbench's benchmarks."""


def _machine(doc: dict[str, Any]) -> dict[str, Any]:
    info = doc.get("machine_info") or {}
    ours = info.get("regbench")
    if isinstance(ours, dict):
        return ours
    cpu = info.get("cpu") or {}
    return {"cpu_model": cpu.get("brand_raw") or info.get("processor"),
            "cpu_count": cpu.get("count"), "hostname": info.get("node")}


def _commit(doc: dict[str, Any]) -> str | None:
    ci = doc.get("commit_info") or {}
    cid = ci.get("id")
    if not cid:
        return None
    return f"{cid}+dirty" if ci.get("dirty") else str(cid)


def _entry(b: dict[str, Any], i: int) -> dict[str, Any]:
    extra = b.get("extra_info") or {}
    stats = b.get("stats") or {}
    name = b.get("fullname") or b.get("name") or f"benchmark {i}"
    missing = [k for k in ("op", "impl", "role", "numel") if k not in extra]
    if missing:
        raise BenchImportError(f"{name}: extra_info lacks {', '.join(missing)}; only regbench's "
                               "tests/bench benchmarks can be imported")
    if extra["role"] not in ROLES:
        raise BenchImportError(f"{name}: role {extra['role']!r} is not one of {ROLES}")
    if "median" not in stats:
        raise BenchImportError(f"{name}: no stats.median")
    q1, q3 = stats.get("q1"), stats.get("q3")
    iqr = stats.get("iqr", (q3 - q1) if q1 is not None and q3 is not None else None)
    return {"op": str(extra["op"]), "impl": str(extra["impl"]), "role": extra["role"],
            "backend": extra.get("backend"), "dtype": extra.get("dtype", "fp32"),
            "numel": int(extra["numel"]), "threads": extra.get("threads"),
            "device": extra.get("device", "cpu"), "median_s": float(stats["median"]),
            "iqr_s": float("nan") if iqr is None else float(iqr), "bytes": extra.get("bytes")}


def load_pytest_benchmark_json(path: str | Path) -> list[dict[str, Any]]:
    """Rows in the store's bench format (`regbench.store.BENCH_COLUMNS`) from one
    `--benchmark-json` file; ratios are taken between benchmarks of that file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchImportError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise BenchImportError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise BenchImportError(f"{path} is not pytest-benchmark JSON (no 'benchmarks' list)")
    entries = [_entry(b, i) for i, b in enumerate(doc["benchmarks"])]
    machine = _machine(doc)
    run_id = "pytest-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    common = {"run_id": run_id, "git_commit": _commit(doc), "created_at": doc.get("datetime")}

    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(e[k] for k in _KEY)

    copies = {key(e): e["median_s"] for e in entries if e["role"] == "copy"}
    natives: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in entries:
        if e["role"] == "native":
            natives.setdefault((e["op"], *key(e)), []).append(e)

    rows: list[dict[str, Any]] = []
    for e in entries:
        copy_s = copies.get(key(e))
        nbytes = e["bytes"]
        base = {
            **common, "op": "copy" if e["role"] == "copy" else e["op"], "impl": e["impl"],
            "baseline": None, "backend": e["backend"] if e["role"] == "ours" else "native",
            "dtype": e["dtype"], "numel": e["numel"], "threads": e["threads"],
            "device": e["device"], "median_s": e["median_s"], "iqr_s": e["iqr_s"],
            "gbps": (nbytes / e["median_s"] / 1e9) if nbytes and e["median_s"] > 0 else None,
            "ratio_vs_native": None,
            "ratio_vs_copy": (e["median_s"] / copy_s) if copy_s else None,
            "machine": {**machine, "threads": e["threads"]},
        }
        refs = natives.get((e["op"], *key(e)), []) if e["role"] == "ours" else []
        if not refs:
            rows.append(base)
        for n in refs:
            rows.append({**base, "baseline": n["impl"],
                         "ratio_vs_native": e["median_s"] / n["median_s"]})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: load a pytest-benchmark JSON file, print a summary, append it to a store."""
    from regbench.store import DEFAULT_STORE

    parser = argparse.ArgumentParser(prog="python -m regbench.bench.pytest_json",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="file written by pytest --benchmark-json=PATH")
    parser.add_argument("--store", default=str(DEFAULT_STORE),
                        help=f"results store to append to (default {DEFAULT_STORE})")
    parser.add_argument("--dry-run", action="store_true", help="print the rows, store nothing")
    args = parser.parse_args(argv)
    try:
        rows = load_pytest_benchmark_json(args.json)
    except BenchImportError as exc:
        print(f"regbench.bench.pytest_json: error: {exc}", file=sys.stderr)
        return 2
    from regbench.bench.cpu import print_table

    print_table(rows)
    if args.dry_run:
        return 0
    from regbench.errors import StoreError
    from regbench.store import Store

    try:
        with Store(args.store) as store:
            n = store.add_bench(rows)
    except StoreError as exc:
        print(f"regbench.bench.pytest_json: error: {exc}", file=sys.stderr)
        return 2
    print(f"stored {n} rows in {args.store} (run_id {rows[0]['run_id'] if rows else '-'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
