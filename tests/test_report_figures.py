"""The report's figures from hand-made frames at full size (every strength of the `full`
sweeps, twelve regularizers, every benchmark pair): valid images, data-driven notes, and at
most MAX_SERIES series on any axes (`plotting.save` refuses more, checked here too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from regbench.report import across as ax
from regbench.report import fig_across, fig_double_descent, fig_kernels, fig_training, plotting
from regbench.report import kernels as kb
from regbench.report import stats as rs

REGS = ["none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm", "early_stopping",
        "augment", "more_data", "label_smoothing", "stochastic_depth"]


def _valid(fig: plotting.Figure) -> None:
    for f in fig.files:
        if f.suffix == ".png":
            with Image.open(f) as im:
                im.verify()
            with Image.open(f) as im:
                assert min(im.size) > 100
        else:
            assert f.read_bytes().startswith(b"%PDF")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every figure saved through plotting.save: (name, most series on one of its axes)."""
    seen: list[tuple[str, int]] = []
    real = plotting.save

    def spy(fig: plt.Figure, out_dir: Path, name: str, formats: list[str], **kw: object):
        if kw.get("check_series", True):
            seen.append((name, max((plotting.series_count(a) for a in fig.axes), default=0)))
        return real(fig, out_dir, name, formats, **kw)

    for mod in (fig_across, fig_double_descent, fig_kernels, fig_training):
        monkeypatch.setattr(mod, "save", spy)
    return seen


def test_save_refuses_a_seventh_series(tmp_path: Path) -> None:
    fig, axes = plt.subplots()
    for k in range(7):
        axes.plot([0, 1, 2], [k, k + 1, k], label=f"s{k}")
    with pytest.raises(ValueError, match="7 series on one axes; at most 6"):
        plotting.save(fig, tmp_path, "seven", ["png"])
    assert not (tmp_path / "seven.png").exists()
    fig, axes = plt.subplots()
    axes.plot([0, 1, 2], [0, 1, 0])  # unlabelled data lines count too
    axes.axhline(1.0)  # a reference line does not
    assert plotting.series_count(axes) == 1
    plt.close(fig)


def _summary_cells() -> pd.DataFrame:
    """curve / mlp, every regularizer at the `full` number of strengths (dropout: 10)."""
    rows = []
    for reg in REGS:
        strengths = [0.0] if reg == "none" else (
            [round(0.1 * i, 1) for i in range(1, 11)] if reg == "dropout"
            else [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
        for s in strengths:
            for seed in range(3):
                gap = 0.1 - 0.05 * s + 0.01 * seed
                rows.append({"cell_id": f"{reg}{s}{seed}", "status": "ok", "task": "curve",
                             "task_params": "{}", "arch": "mlp", "arch_params": "{}",
                             "reg_params": "{}", "protocol": "{}", "regularizer": reg,
                             "strength": s, "seed": seed, "higher_is_better": 0,
                             "metric_name": "rmse", "train_metric": 0.1, "val_metric": 0.2 + gap,
                             "test_metric": 0.1 + gap, "gap_metric": gap, "train_loss": 0.01,
                             "test_loss": 0.01 + gap, "gap_loss": gap})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_training_figures_at_full_size(tmp_path: Path, counted: list) -> None:
    cells = _summary_cells()
    prepared = rs.prepare(cells)
    ids = list(prepared.cell_id)
    x = np.linspace(0, 1, 20)
    preds = {c: {"x": x.tolist(), "y": x.tolist(), "pred": (x * 0.9).tolist(),
                 "x_train": x[::2].tolist(), "y_train": x[::2].tolist()} for c in ids}
    params = {c: np.random.default_rng(0).normal(size=50).tolist() for c in ids}
    curves = pd.DataFrame([{"cell_id": c, "epoch": e, "train_loss": 1.0 / (e + 1)}
                           for c in ids for e in range(5)])
    figs = fig_training.seed004(prepared, curves, preds, params, params, tmp_path, ["png"])
    assert {f.name for f in figs} == {"seed004_curve_mlp_l2", "seed004_curve_mlp_dropout"}
    dropout = next(f for f in figs if f.name.endswith("dropout"))
    assert "4 of 11 strengths drawn (0, 0.1, 0.5, 1)" in dropout.note
    summary = rs.summarize(cells)
    figs += fig_training.gap_vs_strength(summary, tmp_path, ["png"])
    for f in figs:
        _valid(f)
    assert counted and max(n for _, n in counted) <= plotting.MAX_SERIES
    assert fig_training.pick_strengths([0.0, 0.1, 0.2]) == [0.0, 0.1, 0.2]


def _dd_cells(regs: tuple[str, ...] = ("none", "weight_decay", "dropout")) -> pd.DataFrame:
    rows = []
    widths = (2, 8, 32, 128, 512)
    for k, reg in enumerate(regs):
        f = 0.5 ** min(k, 2)  # regularized: slower to interpolate, a lower peak
        for width in widths:
            for seed in range(3):
                train = min(1.0, 0.6 + f * width / 200)
                test = 0.7 + 0.01 * seed - (0.15 * f if width == 32 else 0.0) + 0.02 * k
                rows.append({"cell_id": f"{reg}{width}{seed}", "status": "ok", "task": "mnist1d",
                             "task_params": "{}", "arch": "mlp", "reg_params": "{}",
                             "arch_params": json.dumps({"depth": 1, "width": width}),
                             "regularizer": reg, "strength": 0.0 if reg == "none" else 0.1,
                             "seed": seed, "protocol": "{}", "higher_is_better": 1,
                             "metric_name": "accuracy", "train_metric": train,
                             "test_metric": test})
    return pd.DataFrame(rows)


def test_double_descent_figure(tmp_path: Path, counted: list) -> None:
    cells = rs.prepare(_dd_cells())
    models = {c: {"n_params": 41 * w + w * 10 + 10} for c, w in zip(
        cells.cell_id, [json.loads(p)["width"] for p in cells.arch_params])}
    (fig,) = fig_double_descent.double_descent(cells, tmp_path, ["png", "pdf"], models)
    _valid(fig)
    assert "rises to 0.44 at width 32" in fig.note
    # train error 1 - min(1, 0.6 + w/200) first reaches <= 0.01 at width 128 (0.6 + 0.64 > 1)
    assert "(interpolation) at width 128 (6538 parameters)" in fig.note
    d = fig_double_descent.error_curves(cells)
    assert fig_double_descent.interpolation_width(d, "none") == 128.0
    assert fig_double_descent.interpolation_width(d, "weight_decay") == 512.0
    assert counted[-1] == ("double_descent", 6)
    (bare,) = fig_double_descent.double_descent(cells, tmp_path, ["png"])
    assert "No parameter counts stored: no second axis." in bare.note
    many = rs.prepare(_dd_cells(("none", "l1", "l2", "weight_decay", "dropout")))
    (split,) = fig_double_descent.double_descent(many, tmp_path, ["png"])
    assert max(n for _, n in counted) <= plotting.MAX_SERIES  # five regularizers: 2 panels


def _bench() -> pd.DataFrame:
    """A CPU run at two thread counts plus a GPU run: copy_, 4 natives and 2 ours (8 pairs:
    two more than one panel may hold)."""
    rows = []
    i = 0
    natives = {"F.dropout": 4.0, "compile(F.dropout)": 2.0, "nat3": 3.0, "nat4": 5.0}
    for device, threads in (("cpu", 1), ("cpu", 2), ("cuda", 0)):
        for n in (2**16, 2**20, 2**24):
            copy_s = 8 * n / 40e9
            rows.append({"op": "copy", "impl": "copy_", "baseline": None, "backend": "native",
                         "median_s": copy_s, "gbps": 40.0, "numel": n})
            for name, slow in natives.items():
                rows.append({"op": "dropout_fwd", "impl": name, "baseline": None,
                             "backend": "native", "median_s": slow * copy_s,
                             "gbps": 40.0 / slow, "numel": n})
            for impl, t in (("fused", 1.25), ("fused(out=)", 1.1)):
                for name, slow in natives.items():
                    rows.append({"op": "dropout_fwd", "impl": impl, "baseline": name,
                                 "backend": "cpp", "median_s": t * copy_s, "gbps": 40.0 / t,
                                 "numel": n, "ratio_vs_native": t / slow,
                                 "ratio_vs_copy": t})
            for r in rows[-(1 + 4 + 8):]:
                r.update(device=device, threads=threads, dtype="fp32", id=i, iqr_s=0.0,
                         machine=json.dumps({"cpu_model": "Test CPU", "gpu": None
                                             if device == "cpu" else "Test GPU"}))
                i += 1
    return pd.DataFrame(rows)


def test_kernel_figures_and_pivot(tmp_path: Path, counted: list) -> None:
    b = _bench()
    figs = fig_kernels.kernel_figures(b, tmp_path, ["png", "pdf"])
    assert [f.name for f in figs] == ["kernel_speedup_cpu_fp32", "kernel_bandwidth_cpu_fp32",
                                      "kernel_speedup_cuda_fp32", "kernel_bandwidth_cuda_fp32"]
    for f in figs:
        _valid(f)
    assert max(n for _, n in counted) <= plotting.MAX_SERIES
    speed = figs[0]
    # the fastest native is compile(F.dropout) at 2 copies' time: 2 / 1.25 = 1.6x
    assert "dropout_fwd 1.6–1.6x" in speed.note and "4 further pairs" in speed.note
    assert "dropout_fwd 0.80–0.91" in figs[1].note  # 1/1.25 and 1/1.1 of copy_ bandwidth
    piv = kb.pivot(kb.latest_bench(b))
    assert len(piv) == 3 * 3  # (cpu 1, cpu 2, cuda) x 3 sizes, one op
    assert set(piv.ours) == {"fused"} and set(piv.native) == {"compile(F.dropout)"}
    np.testing.assert_allclose(piv.speedup, 1.6)
    np.testing.assert_allclose(piv.fraction_of_copy, 0.8)
    np.testing.assert_allclose(piv.native_us / piv.ours_us, 1.6)
    assert kb.size_label(2**24) == "16M" and kb.size_label(21) == "21"


def test_across_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame([{"setting": f"t{k}", "regularizer": r, "seed": s,
                            "score": float(rng.random())}
                           for k in range(4) for r in REGS[:8] for s in range(3)])
    tests = ax.rank_tests(scores)
    (cd,) = fig_across.critical_difference(tests, tmp_path, ["png", "pdf"])
    assert {p.name for p in cd.files} == {"critical_difference.png", "critical_difference.pdf"}
    _valid(cd)
    assert cd.note.startswith("Best mean rank: ")
    (agg,) = fig_across.aggregates(ax.aggregates(scores), tmp_path, ["png"])
    _valid(agg)
    one = ax.rank_tests(scores[scores.setting == "t0"])
    assert fig_across.critical_difference(one, tmp_path, ["png"]) == []


CD_SCRIPT = """
import sys
from pathlib import Path
import numpy as np, pandas as pd
from regbench.report import across, fig_across
rng = np.random.default_rng(0)
regs = sys.argv[2].split(",")
scores = pd.DataFrame([{"setting": f"t{k}", "regularizer": r, "seed": s,
                        "score": float(rng.random())}
                       for k in range(4) for r in regs for s in range(3)])
fig_across.critical_difference(across.rank_tests(scores), Path(sys.argv[1]), ["png", "pdf"])
"""


def test_critical_difference_bytes_do_not_depend_on_string_hashing(tmp_path: Path) -> None:
    """A bar's regularizers come from a set, whose order follows PYTHONHASHSEED; the files
    must not (they are embedded in report.html and compared across machines)."""
    files = []
    for seed in ("1", "2", "3"):
        out = tmp_path / seed
        subprocess.run([sys.executable, "-c", CD_SCRIPT, str(out), ",".join(REGS[:8])],
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        files.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert set(files[0]) == {"critical_difference.png", "critical_difference.pdf"}
    assert files[0] == files[1] == files[2]
