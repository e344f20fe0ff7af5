"""The GPU check behind `tools/gpu_check.sh`: every CUDA path of regbench in one timed run that
needs no network, for a machine lent for minutes (see the README, "CUDA kernels (Triton)").

Steps, each timed and recorded even when an earlier one failed (each runs in its own process
under a time cap, and the whole run under a budget, default 450 s):

1. versions: Python, torch, CUDA, GPU, driver, Triton;
2. install: `pip install --no-index --no-deps --no-build-isolation -e .` plus the wheels carried
   in `.gpu-wheels/` (`tools/gpu_wheels.sh`) that the machine lacks; `PYTHONPATH` points at
   this tree in any case, so a failed install does not stop the later steps;
3. build: the C++ kernels (the CPU side of every CPU == CUDA comparison);
4. tests: the tests that need a GPU (`CUDA_TESTS`);
5. cells: `regbench run --device cuda` on small synthetic files in the official MNIST and
   CIFAR-10 formats (one `mlp` cell, one `resnet` depth-20 cell, 1 epoch), twice, compared
   bit for bit, and the MNIST cell on the CPU beside them;
6. bench: `python -m regbench.bench.cuda` at `BENCH_SIZES`, one process per dtype;
7. summary.md: every number, failure and wall time, also printed.

Without CUDA (or with --dry-run) it is a dry run: the steps that need a GPU are reported as
skipped and the rest runs (the CPU cell, the benchmark's refusal without a GPU), exit 0.
Output (at most `MAX_FILES` files) goes to --out: summary.md, log.txt, cells.json and, on a
GPU, tests.xml, bench_fp32.json, bench_bf16.json. Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The tests that need a CUDA GPU (they skip without one); tests/test_gpu_check.py checks that
# this list is every test of tests/ that is marked to skip without CUDA.
CUDA_TESTS = (
    "tests/test_kernels_triton.py::test_cuda_equals_cpu_bitwise",
    "tests/test_kernels_triton.py::test_cuda_opcheck_gradcheck_compile",
    "tests/test_kernels_triton.py::test_cuda_every_config_and_autotuning",
    "tests/test_kernels_triton.py::test_cuda_fused_dropout_step_never_syncs",
    "tests/test_optim_triton.py::test_cuda_optimizers_run_triton_and_match_reference",
    "tests/test_devices.py::test_same_cuda_cell_twice_is_bitwise_identical",
    "tests/test_devices.py::test_cuda_step_loop_does_not_sync_per_step",
)
BENCH_SIZES = "1M,16M,256M"
BENCH_DTYPES = ("fp32", "bf16")
BUDGET_S = 450.0  # under 8 minutes with the summary and process start
# Per-step caps (s): a hung step cannot take the time of the steps after it.
CAPS = {"versions": 60, "install": 90, "build": 180, "tests": 200, "cells": 90,
        "bench": 150}
MAX_FILES = 8
LOG_STEP_CHARS = 200_000  # per step in log.txt (head and tail kept)
WHEELS_DIR = os.environ.get("GPU_WHEELS_DIR", ".gpu-wheels")

# Small synthetic data in the official formats (tests/data_files.py) and the two cells.
MNIST_TRAIN, MNIST_TEST, CIFAR_PER_BATCH = 600, 100, 100  # 500 / 450 train after validation
CELLS_TOML = """seeds = 1
[[blocks]]
tasks = ["mnist"]
archs = ["mlp"]
regularizers = ["none"]
protocol = {epochs = 1}
[[blocks]]
tasks = ["cifar10"]
archs = [{name = "resnet", depth = 20}]
regularizers = ["none"]
protocol = {epochs = 1}
"""
COMPARED = ("status", "train_loss", "val_loss", "test_loss", "train_metric", "val_metric",
            "test_metric", "best_epoch")
SHOWN = ("task", "arch", "device", "status", "train_loss", "test_loss", "train_metric",
         "test_metric", "train_s", "wall_s", "samples_per_s", "error")

VERSIONS = r"""
import json, platform, subprocess, sys
info = {"python": platform.python_version()}
try:
    import torch
    info.update(torch=torch.__version__, cuda_build=torch.version.cuda,
                cuda=torch.cuda.is_available())
    if info["cuda"]:
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, sm=f"{p.major}.{p.minor}", gpus=torch.cuda.device_count(),
                    gpu_mem_gib=round(p.total_memory / 2**30, 1))
except Exception as exc:
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else "-"
except Exception:
    info["driver"] = "-"
try:
    import triton
    info["triton"] = triton.__version__
except Exception as exc:
    info["triton"] = f"not importable ({type(exc).__name__})"
import numpy
info["numpy"] = numpy.__version__
print(json.dumps(info))
"""
DISTS = (r"import importlib.metadata as m, json; "
         r"print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))")
BUILD = (r"import sys; from regbench.kernels import _backend as b; b.load_extension(); "
         r"e = b.build_error(); print('backends:', b.available_backends()); "
         r"print('build error:', e) if e else None; sys.exit(1 if e else 0)")
WRITE_DATA = r"""
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from data_files import write_cifar10, write_mnist
root = Path(sys.argv[1])
n_train, n_test, per_batch = (int(a) for a in sys.argv[2:5])
write_mnist(root / "MNIST" / "raw", n_train=n_train, n_test=n_test, gz=True, seed=1)
write_cifar10(root / "cifar-10-batches-py", per_batch=per_batch, seed=3)
print("written under", root)
"""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cuda_test_names(tests_dir: Path) -> set[str]:
    """`path::function` of every test in `tests_dir` marked to skip without CUDA: decorated with
    a name bound to `pytest.mark.skipif(not ...cuda.is_available()...)` or with that mark."""
    found: set[str] = set()
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        marks = set()
        for node in tree.body:  # cuda = pytest.mark.skipif(not torch.cuda.is_available(), ...)
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and _skips_without_cuda(node.value)):
                marks.add(node.targets[0].id)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                if any((isinstance(d, ast.Name) and d.id in marks) or _skips_without_cuda(d)
                       for d in node.decorator_list):
                    found.add(f"{path.relative_to(tests_dir.parent)}::{node.name}")
    return found


def _skips_without_cuda(node: ast.expr) -> bool:
    if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("skipif")
            and node.args):
        return False
    cond = node.args[0]
    return (isinstance(cond, ast.UnaryOp) and isinstance(cond.op, ast.Not)
            and "cuda" in ast.unparse(cond.operand).lower())


class Check:
    def __init__(self, out: Path, work: Path, py: str, budget: float, dry: bool) -> None:
        self.out, self.work, self.py, self.dry = out, work, py, dry
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget
        self.budget = budget
        self.steps: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.tests: dict[str, Any] = {}
        self.cells: dict[str, Any] = {}
        self.bench: dict[str, Any] = {}
        self.log = (out / "log.txt").open("w")
        self.env = dict(os.environ)
        pp = [str(ROOT), *filter(None, self.env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env["PYTHONPATH"] = os.pathsep.join(pp)

    # -- running ---------------------------------------------------------------------------
    def record(self, name: str, status: str, seconds: float, note: str = "",
               detail: str = "") -> dict[str, Any]:
        step = {"step": name, "status": status, "seconds": round(seconds, 1), "note": note,
                "detail": detail}
        self.steps.append(step)
        print(f"[gpu_check] {name}: {status} ({seconds:.1f} s){' - ' + note if note else ''}",
              flush=True)
        self.log.write(f"=== {name}: {status} ({seconds:.1f} s) {note}\n")
        self.log.flush()
        return step

    def skip(self, name: str, why: str) -> dict[str, Any]:
        return self.record(name, "skipped", 0.0, why)

    def call(self, name: str, cmd: list[str], cap: float
             ) -> tuple[int | None, str, float]:
        """Run `cmd` (its own process group) under min(cap, time left); (rc or None on timeout,
        output, seconds). The output goes to log.txt."""
        left = self.deadline - time.monotonic()
        limit = min(cap, left)
        if limit < 5:
            return None, f"not started: the {self.budget:.0f} s budget is spent", 0.0
        self.log.write(f"\n=== {name}: $ {' '.join(cmd)}  (limit {limit:.0f} s)\n")
        self.log.flush()
        t = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limit)
            rc: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the step's own group (pytest, ninja, ...)
            out, _ = proc.communicate()
            rc = None
            out += f"\n[gpu_check] killed after {limit:.0f} s\n"
        secs = time.monotonic() - t
        text = out if len(out) <= LOG_STEP_CHARS else (
            out[:LOG_STEP_CHARS // 4] + "\n[... cut ...]\n" + out[-3 * LOG_STEP_CHARS // 4:])
        self.log.write(text)
        self.log.flush()
        return rc, out, secs

    def step(self, name: str, cmd: list[str], cap: float, note: str = "") -> tuple[bool, str]:
        """`call`, then record ok | FAILED (exit code) | timeout | skipped (budget spent)."""
        rc, out, secs = self.call(name, cmd, cap)
        if rc == 0:
            self.record(name, "ok", secs, note)
        elif rc is not None:
            self.record(name, "FAILED", secs, f"exit {rc}", tail(out))
        elif secs:
            self.record(name, "timeout", secs, f"killed at its {secs:.0f} s limit", tail(out))
        else:
            self.record(name, "skipped", 0.0, out)
        return rc == 0, out

    # -- the steps ---------------------------------------------------------------------------
    def versions(self) -> None:
        ok, out = self.step("versions", [self.py, "-c", VERSIONS], CAPS["versions"])
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if lines:
            self.info = json.loads(lines[-1])
        print("[gpu_check] " + describe(self.info), flush=True)
        if not self.info.get("cuda"):
            self.dry = True

    def install(self) -> None:
        wheels = sorted((ROOT / WHEELS_DIR).glob("*.whl"))
        rc, out, _ = self.call("installed distributions", [self.py, "-c", DISTS], 60)
        have = {norm(n) for n in json.loads(out.splitlines()[-1])} if rc == 0 else set()
        missing = [w for w in wheels if norm(w.name.split("-")[0]) not in have]
        carried = (f"{len(wheels)} wheels in {WHEELS_DIR}/, {len(missing)} not installed here"
                   + (f" ({', '.join(w.name.split('-')[0] for w in missing)})" if missing else "")
                   if wheels else f"no {WHEELS_DIR}/ (tools/gpu_wheels.sh makes it)")
        pip = [self.py, "-m", "pip", "install", "--no-index", "--no-deps",
               "--disable-pip-version-check"]
        editable = ["--no-build-isolation", "-e", "."]  # offline: the environment's setuptools
        if self.dry:  # leave this environment as it is: only check that it would install
            rc, _, _ = self.call("setuptools?", [self.py, "-c", "import setuptools"], 60)
            if rc != 0:
                self.skip("install (pip --dry-run)", carried + "; setuptools is not installed "
                          "here (an offline install builds with the environment's setuptools)")
                return
            self.step("install (pip --dry-run)", [*pip, "--dry-run", *editable],
                      CAPS["install"], carried + "; dry run: nothing installed")
            return
        if missing:
            self.pip("install wheels", [*pip, *map(str, missing)], carried)
        else:
            self.skip("install wheels", carried)
        self.pip("install regbench", [*pip, *editable], "editable, from this tree")

    def pip(self, name: str, cmd: list[str], note: str) -> None:
        """`step`, once more with --break-system-packages where pip refuses an environment
        that its Python distribution manages (PEP 668)."""
        rc, out, secs = self.call(name, cmd, CAPS["install"])
        if rc not in (0, None) and "externally-managed-environment" in out:
            self.log.write(f"[gpu_check] {name}: again with --break-system-packages\n")
            rc, out, more = self.call(name, [*cmd, "--break-system-packages"], CAPS["install"])
            secs += more
        if rc == 0:
            self.record(name, "ok", secs, note)
        else:
            self.record(name, "FAILED" if rc is not None else "timeout", secs,
                        f"exit {rc}; {note}; the steps use this tree through PYTHONPATH",
                        tail(out))

    def build(self) -> None:
        if self.dry:
            self.skip("build C++ kernels", "dry run: the kernel tests build them")
            return
        self.step("build C++ kernels", [self.py, "-c", BUILD], CAPS["build"])

    def run_tests(self) -> None:
        missing = [t for t in CUDA_TESTS if not (ROOT / t.split("::")[0]).is_file()
                   or f"def {t.split('::')[1]}(" not in (ROOT / t.split("::")[0]).read_text()]
        if missing:
            self.record("tests (CUDA)", "FAILED", 0.0, f"tests not found: {missing}")
            return
        if self.dry:
            self.skip("tests (CUDA)", f"no CUDA: {len(CUDA_TESTS)} CUDA tests not run")
            return
        xml = self.out / "tests.xml"
        ok, out = self.step("tests (CUDA)", [
            self.py, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", "--junitxml",
            str(xml), *CUDA_TESTS], CAPS["tests"])
        self.tests = parse_tests(xml, out)
        self.steps[-1]["note"] = (self.tests["counts"] + "; " + self.steps[-1]["note"]).strip("; ")

    def run_cells(self) -> None:
        data, toml = self.work / "data", self.work / "cells.toml"
        toml.write_text(CELLS_TOML)
        ok, _ = self.step("cells: data files", [
            self.py, "-c", WRITE_DATA, str(data), str(MNIST_TRAIN), str(MNIST_TEST),
            str(CIFAR_PER_BATCH)], CAPS["cells"],
            f"MNIST idx {MNIST_TRAIN}+{MNIST_TEST}, CIFAR-10 pickles 6 x {CIFAR_PER_BATCH}")
        if not ok:
            return
        runs = [("cuda run 1", "cuda", None), ("cuda run 2", "cuda", None),
                ("cpu", "cpu", "mnist")]
        stores: dict[str, Path] = {}
        for label, device, tasks in runs:
            name = f"cells: {label}" + (" (mnist)" if tasks else "")
            if device == "cuda" and self.dry:
                self.skip(name, "no CUDA")
                continue
            store = self.work / f"{label.replace(' ', '_')}.sqlite"
            cmd = [self.py, "-m", "regbench", "run", "--matrix", str(toml), "--store",
                   str(store), "--data-dir", str(data), "--device", device, "--no-progress"]
            ok, out = self.step(name, cmd + (["--tasks", tasks] if tasks else []),
                                CAPS["cells"])
            self.steps[-1]["note"] = "; ".join(filter(None, (
                self.steps[-1]["note"], one_line(out, "run now").split("; store")[0])))
            if store.is_file():
                stores[label] = store
        self.cells = {label: read_cells(s) for label, s in stores.items()}
        failed = [f"{label}: {r['task']} {r['status']} {r.get('error') or ''}".strip()
                  for label, rows in self.cells.items() for r in rows if r["status"] != "ok"]
        if failed:
            self.record("cells: status", "FAILED", 0.0, "; ".join(failed)[:600])
        if "cuda run 1" in self.cells and "cuda run 2" in self.cells:
            diff = compare(self.cells["cuda run 1"], self.cells["cuda run 2"])
            self.record("cells: cuda reruns bitwise", "FAILED" if diff else "ok", 0.0,
                        "; ".join(diff) if diff else
                        f"{len(self.cells['cuda run 1'])} cells: {', '.join(COMPARED)} equal")
        (self.out / "cells.json").write_text(json.dumps(self.cells, indent=1))

    def run_bench(self) -> None:
        for dt in BENCH_DTYPES:
            name = f"bench {dt} ({BENCH_SIZES})"
            js = self.out / f"bench_{dt}.json"
            cmd = [self.py, "-m", "regbench.bench.cuda", "--sizes", BENCH_SIZES, "--dtypes", dt,
                   "--json", str(js)]
            if self.dry:
                if dt != BENCH_DTYPES[0]:
                    self.skip(name, "no CUDA")
                    continue
                rc, out, secs = self.call(name, cmd, CAPS["bench"])
                refused = rc == 2 and "no CUDA device is available" in out
                self.record(name, "skipped" if refused else "FAILED", secs,
                            "no CUDA: the benchmark refused with exit 2, as it should" if refused
                            else f"expected exit 2 and its no-CUDA message, got exit {rc}",
                            "" if refused else tail(out))
                continue
            ok, _ = self.step(name, cmd, CAPS["bench"])
            if js.is_file():
                self.bench[dt] = json.loads(js.read_text())

    # -- the summary -------------------------------------------------------------------------
    def summary(self) -> str:
        total = time.monotonic() - self.t0
        bad = [s for s in self.steps if s["status"] in ("FAILED", "timeout")]
        failed = f"{len(bad)} step(s) failed"
        head = (f"DRY RUN (no CUDA): the GPU steps are skipped{', ' + failed if bad else ''}"
                if self.dry else "all steps passed" if not bad else failed)
        lines = [f"# regbench GPU check: {head}", "",
                 describe(self.info), "",
                 f"Total {total:.0f} s (budget {self.budget:.0f} s). Sizes: benchmark "
                 f"{BENCH_SIZES} x {', '.join(BENCH_DTYPES)}; cells 1 epoch on synthetic files: "
                 f"MNIST {MNIST_TRAIN} train + {MNIST_TEST} test images, CIFAR-10 "
                 f"{5 * CIFAR_PER_BATCH} + {CIFAR_PER_BATCH}.", "",
                 "| step | status | s | note |", "|---|---|---:|---|"]
        for s in self.steps:
            lines.append(f"| {s['step']} | {s['status']} | {s['seconds']:.1f} | "
                         f"{md(s['note'])[:400]} |")
        if self.tests.get("cases"):
            lines += ["", f"## CUDA tests: {self.tests['counts']}", ""]
            for name, (outcome, msg) in self.tests["cases"].items():
                lines.append(f"- {outcome} `{name}`" + (f": {md(msg)[:300]}" if msg else ""))
        if self.cells:
            lines += ["", "## Cells", "", "| run | " + " | ".join(SHOWN) + " |",
                      "|---|" + "---|" * len(SHOWN)]
            for label, rows in self.cells.items():
                for r in rows:
                    lines.append(f"| {label} | " + " | ".join(fmt(r.get(k)) for k in SHOWN)
                                 + " |")
        for dt, js in self.bench.items():
            lines += ["", *bench_lines(dt, js)]
        for s in bad:
            if s["detail"]:
                lines += ["", f"## {s['step']}: {s['status']}", "", "```",
                          s["detail"], "```"]
        return "\n".join(lines) + "\n"

    def finish(self) -> int:
        text = self.summary()
        (self.out / "summary.md").write_text(text)
        self.log.close()
        files = [p for p in self.out.rglob("*") if p.is_file()]
        print("\n" + text, flush=True)
        if len(files) > MAX_FILES:
            print(f"[gpu_check] {len(files)} files in {self.out}, more than {MAX_FILES}",
                  flush=True)
            return 1
        bad = [s for s in self.steps if s["status"] in ("FAILED", "timeout")]
        return 1 if bad else 0


def tail(text: str, n: int = 25, width: int = 1500) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])[-width:]


def one_line(text: str, needle: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if needle in ln), "")[:300]


def md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "/")


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return md(v) if v is not None else "-"


def describe(info: dict[str, Any]) -> str:
    gpu = (f"GPU {info.get('gpu')} (sm {info.get('sm')}, {info.get('gpu_mem_gib')} GiB, "
           f"{info.get('gpus')} device(s))" if info.get("cuda") else "no CUDA GPU")
    return (f"{gpu}; driver {info.get('driver', '-')}; Python {info.get('python', '?')}; "
            f"torch {info.get('torch', info.get('torch_error', '?'))} "
            f"(CUDA {info.get('cuda_build')}); Triton {info.get('triton', '?')}; "
            f"numpy {info.get('numpy', '?')}")


def parse_tests(xml: Path, out: str) -> dict[str, Any]:
    """{counts, cases: {test: (outcome, message)}} from the JUnit XML, else from `-v` lines."""
    cases: dict[str, tuple[str, str]] = {}
    if xml.is_file():
        for tc in ET.parse(xml).getroot().iter("testcase"):
            name = f"{tc.get('classname', '').rsplit('.', 1)[-1]}::{tc.get('name')}"
            outcome, msg = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = tc.find(tag)
                if el is not None:
                    outcome = {"failure": "FAILED", "error": "ERROR"}.get(tag, "skipped")
                    msg = el.get("message") or (el.text or "")[:300]
                    break
            cases[name] = (outcome, msg)
    else:
        for m in re.finditer(r"^tests/(\S+?)\.py::(\S+) (PASSED|FAILED|SKIPPED|ERROR)", out, re.M):
            cases[f"{m[1]}::{m[2]}"] = (m[3].lower() if m[3] in ("PASSED", "SKIPPED")
                                         else m[3], "")
    counts: dict[str, int] = {}
    for outcome, _ in cases.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no results"
    return {"counts": text + ("" if xml.is_file() else " (from the log: no JUnit file)"),
            "cases": cases}


def read_cells(store: Path) -> list[dict[str, Any]]:
    """The stored cells (exact floats, read with sqlite3), one dict each, by task."""
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute("SELECT * FROM cells ORDER BY task, cell_id")]
        for r in rows:
            r["curve_train_loss"] = [c[0] for c in con.execute(
                "SELECT train_loss FROM curves WHERE cell_id = ? ORDER BY epoch",
                (r["cell_id"],))]
    finally:
        con.close()
    keep = set(SHOWN) | set(COMPARED) | {"cell_id", "curve_train_loss", "torch_version"}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """What differs between two runs of the same cells (bit for bit)."""
    if [r["cell_id"] for r in a] != [r["cell_id"] for r in b]:
        return ["not the same cells"]
    diff = []
    for ra, rb in zip(a, b):
        for k in (*COMPARED, "curve_train_loss"):
            if ra.get(k) != rb.get(k):
                diff.append(f"{ra['task']} {k}: {ra.get(k)!r} != {rb.get(k)!r}")
    return diff


def bench_lines(dt: str, js: dict[str, Any]) -> list[str]:
    """Per op and size: our time, GB/s, time / copy_ and the speed-up over each baseline."""
    rows = js.get("rows", [])
    out = [f"## Benchmark {dt}", "",
           "| op | numel | ours us | GB/s | time / copy_ | speed-up (baseline time / ours) |",
           "|---|---:|---:|---:|---:|---|"]
    seen: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        if r["op"] == "copy":
            out.append(f"| copy_ | {r['numel']} | {r['median_s'] * 1e6:.1f} | "
                       f"{r['gbps']:.0f} | 1 | - |")
        elif r["backend"] == "triton" and r["op"] != "mlp_step":
            seen.setdefault((r["op"], r["numel"]), []).append(r)
    for (op, n), rs in seen.items():
        r0 = rs[0]
        sp = ", ".join(f"{r['baseline']} {1 / r['ratio_vs_native']:.2f}x" for r in rs
                       if r["ratio_vs_native"])
        gb = f"{r0['gbps']:.0f}" if r0["gbps"] else "-"
        vc = f"{r0['ratio_vs_copy']:.2f}" if r0["ratio_vs_copy"] else "-"
        out.append(f"| {op} | {n} | {r0['median_s'] * 1e6:.1f} | {gb} | {vc} | {sp} |")
    for m in js.get("memory", []):
        if "saved_bytes" in m:
            out.append(
                f"\nMLP step (batch {m['batch']}, width {m['width']}, depth {m['depth']}): peak "
                f"nn.Dropout {m['nn.Dropout_peak_bytes'] / 2**20:.0f} MiB, FusedDropout "
                f"{m['FusedDropout_peak_bytes'] / 2**20:.0f} MiB (saved "
                f"{m['saved_bytes'] / 2**20:.0f} MiB); step {m['nn.Dropout_step_s'] * 1e3:.2f} "
                f"ms vs {m['FusedDropout_step_s'] * 1e3:.2f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/gpu_check.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path,
                    default=Path(os.environ["OUT"]) if os.environ.get("OUT") else
                    ROOT / "gpu-check", help="output folder (default $OUT, else ./gpu-check)")
    ap.add_argument("--dry-run", action="store_true",
                    help="skip the GPU steps even when CUDA is available")
    ap.add_argument("--budget", type=float, default=BUDGET_S,
                    help=f"seconds for all steps (default {BUDGET_S:.0f})")
    ap.add_argument("--python", default=sys.executable, help="the Python that runs the steps")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="regbench-gpu-check-") as work:
        check = Check(args.out.resolve(), Path(work), args.python, args.budget, args.dry_run)
        check.versions()
        check.install()
        check.build()
        check.run_tests()
        check.run_cells()
        check.run_bench()
        return check.finish()


if __name__ == "__main__":
    sys.exit(main())
