"""The report's budget section: every tuning study at its equal budget, from the store.

A study (an entry of a `tune` block on one setting) stores *trial* cells (its N sampled
configurations on the tuning seeds) and *final* cells (the configuration with the best mean
validation metric over the tuning seeds, on the test seeds); `cells.tune` tags each with its
study, role and trial. Tune cells never enter the grid views; this module turns them into:

- `view`: one row per study (BUDGET_COLUMNS): the selected configuration (strength,
  parameters, lr), the validation score that chose it, test metric and gap with 95% t-CIs
  over the final cells, and paired differences against the `none` study's final cells on
  the same seeds (paired t-test, Holm across the rows of one task);
- `across_cells`: the final cells shaped like `tuned.tuned_cells`, for the across-task
  statistics of `across` (normalized scores, rank tests, rliable aggregates);
- `cocktails`: each cocktail's selected members against the best single-regularizer study
  of its setting (best mean validation over the test seeds) and against `none`;
- `tunability`: the tuned configuration against the regularizer's first default strength
  at the protocol's lr (its grid "baseline" cells; cocktails have none), `tuning.evp`;
- `evp_curves` and `rank_by_budget`: expected validation performance against the budget
  (Dodge et al. 2019) and the mean rank it gives each regularizer across settings.

A trial whose cells are not all stored yet is left out; one whose cells are stored but not
all ok (diverged, failed, no validation metric) counts as a trial that bought nothing (the
study's worst finite score, in the expected validation performance).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from regbench.report import tables as rt
from regbench.report.stats import REG_ORDER, holm, paired_test, slug, t_ci
from regbench.tuning import evp

COCKTAIL_PREFIX = "cocktail["
CHOSEN_BY_GRID = "strengths chosen from the grid at the protocol lr"


@dataclass(frozen=True)
class StudyInfo:
    """What the matrix knows of a study and its cells do not say: the budget (configured
    trials), the protocol's lr and the grid cells of the first default strength."""

    name: str
    trials: int
    sampler: str
    lr0: float
    baseline_ids: tuple[str, ...] = ()
    default_strength: float | None = None

    @classmethod
    def of(cls, study: Any, device: str = "cpu") -> StudyInfo:
        """From a `tuning.study.Study` (baseline cell ids on `device`)."""
        from regbench import devices

        base = devices.on(list(study.baseline), device)
        return cls(study.name, study.config.trials, study.config.sampler, float(study.lr0),
                   tuple(c.cell_id for c in base),
                   float(study.baseline[0].reg.strength) if study.baseline else None)


def grid_only(cells: pd.DataFrame) -> pd.DataFrame:
    """The grid cells (empty `tune`); the frame itself when it has no tune column or no
    tune cell (so a grid-only store's report is untouched)."""
    if "tune" not in cells or not (cells.tune.fillna("") != "").any():
        return cells
    return cells[cells.tune.fillna("") == ""].reset_index(drop=True)


def split_name(name: str) -> tuple[str, str, str]:
    """(task, arch, entry) of a study name `task / arch / entry[ + with][ on base][ {p}]`:
    the base and the block's protocol belong to the setting, so they go with the arch."""
    task, arch, rest = (name.split(" / ", 2) + ["", ""])[:3]
    suffix = ""
    if rest.endswith("}") and " {" in rest:
        i = rest.rindex(" {")
        rest, suffix = rest[:i], rest[i:]
    if " on " in rest:
        i = rest.index(" on ")
        rest, suffix = rest[:i], rest[i:] + suffix
    return task, arch + suffix, rest


def tune_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The tune cells with their tag parsed: study, role, trial, sampler, tune_seeds; and
    task, arch (the setting), setting, regularizer (the study's entry), cocktail, lr."""
    if "tune" not in cells:
        return cells.iloc[0:0]
    df = cells[cells.tune.fillna("") != ""].copy()
    if df.empty:
        return df
    tags = [json.loads(t) for t in df.tune]
    df["study"] = [t["study"] for t in tags]
    df["role"] = [t.get("role", "") for t in tags]
    df["trial"] = [int(t.get("trial", -1)) for t in tags]
    df["sampler"] = [str(t.get("sampler", "")) for t in tags]
    df["tune_seeds"] = [int(t.get("tune_seeds", 1)) for t in tags]
    parts = [split_name(s) for s in df.study]
    df["task_label"] = [p[0] for p in parts]
    df["arch_label"] = [p[1] for p in parts]
    df["setting"] = df.task_label + " / " + df.arch_label
    entries = [p[2] for p in parts]
    df["cocktail"] = [e.startswith(COCKTAIL_PREFIX) for e in entries]
    cocktails = {e for e, c in zip(entries, df.cocktail) if c}
    short = len(cocktails) == 1  # one cocktail everywhere: call it that
    df["reg_label"] = ["cocktail" if c and short else e for e, c in zip(entries, df.cocktail)]
    df["lr"] = [float(json.loads(p or "{}").get("lr", math.nan)) for p in df.protocol]
    df["addons"] = df.addons.fillna("") if "addons" in df else ""
    return df.reset_index(drop=True)


def _num(x: object) -> str:
    return f"{x:.4g}" if isinstance(x, float) else ",".join(map(_num, x)) \
        if isinstance(x, list) else str(x)


def config_label(row: Any) -> str:
    """The selected configuration in words: `dropout=0.168`, `swa[lr_factor=0.369]=0.85`,
    a cocktail's members on (`mixup=0.35 + label_smoothing=0.17`, or every member off)."""
    if row.cocktail:
        return row.addons or "every member off"
    params = json.loads(row.reg_params or "{}")
    text = row.regularizer + ("[" + ",".join(f"{k}={_num(v)}" for k, v in sorted(
        params.items())) + "]" if params else "")
    return text if row.regularizer == "none" else f"{text}={row.strength:.4g}"


def _trial_scores(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial whose cells are all stored: `score` = mean validation metric over
    its cells, NaN when one is not ok or has no finite validation metric."""
    rows = []
    for idx, g in trials.groupby("trial", sort=True):
        if len(g) < int(g.tune_seeds.iloc[0]):
            continue  # not every tuning seed stored yet
        val = g.val_metric.astype(float)
        ok = bool((g.status == "ok").all() and np.isfinite(val).all())
        rows.append({"trial": int(idx), "score": float(val.mean()) if ok else math.nan})
    return pd.DataFrame(rows, columns=["trial", "score"])


def best_trial(scores: pd.DataFrame, higher_is_better: bool) -> int | None:
    """The trial with the best score (the first of equals), as the study selects it."""
    s = scores[np.isfinite(scores.score.astype(float))]
    if s.empty:
        return None
    sign = -1.0 if higher_is_better else 1.0
    return int(min(zip(sign * s.score, s.trial))[1])


def _order_key(reg: str, cocktail: bool) -> tuple[int, int, str]:
    base = reg.split(" + ")[0]
    return (int(cocktail), REG_ORDER.index(base) if base in REG_ORDER else len(REG_ORDER), reg)


BUDGET_COLUMNS = [
    "task", "arch", "regularizer", "study", "budget", "sampler", "n_trials", "n_completed",
    "selected_trial", "config", "strength", "params", "lr", "val_selected", "val_final_mean",
    "n_seeds", "test_metric_mean", "test_metric_ci_low", "test_metric_ci_high",
    "gap_metric_mean", "gap_metric_ci_low", "gap_metric_ci_high", "delta_test_vs_none",
    "delta_test_ci_low", "delta_test_ci_high", "p_test_holm", "delta_gap_vs_none",
    "delta_gap_ci_low", "delta_gap_ci_high", "p_gap_holm", "n_pairs", "metric_name",
    "cocktail", "best_val",
]
NAN5 = (math.nan, math.nan, math.nan, math.nan, 0)


def view(tc: pd.DataFrame, infos: dict[str, StudyInfo] | None = None) -> pd.DataFrame:
    """One row per study (BUDGET_COLUMNS + higher_is_better), ordered by task, arch and
    regularizer (cocktails last). `tc`: `tune_cells(...)`."""
    infos = infos or {}
    if tc.empty:
        return pd.DataFrame(columns=[*BUDGET_COLUMNS, "higher_is_better"])
    rows = []
    for study, g in tc.groupby("study", sort=False):
        higher = bool(g.higher_is_better.dropna().iloc[0]) if g.higher_is_better.notna().any() \
            else True
        scores = _trial_scores(g[g.role == "trial"])
        finals = g[g.role == "final"].sort_values("seed", kind="stable")
        picked = int(finals.trial.iloc[0]) if len(finals) else best_trial(scores, higher)
        info = infos.get(study)
        ref = finals if len(finals) else g[(g.role == "trial") & (g.trial == picked)]
        first = ref.iloc[0] if len(ref) else g.iloc[0]
        ok = finals[finals.status == "ok"]
        chosen = scores[scores.trial == picked].score
        row = {"task": first.task_label, "arch": first.arch_label,
               "regularizer": first.reg_label, "study": study,
               "budget": info.trials if info else len(scores),
               "sampler": info.sampler if info else first.sampler,
               "n_trials": len(scores), "n_completed": int(np.isfinite(scores.score).sum()),
               "selected_trial": picked if picked is not None else -1,
               "config": config_label(first) if len(ref) else "",
               "strength": math.nan if first.cocktail else float(first.strength),
               "params": first.addons if first.cocktail else (first.reg_params or "{}"),
               "lr": float(first.lr) if len(ref) else math.nan,
               "val_selected": float(chosen.iloc[0]) if len(chosen) else math.nan,
               "val_final_mean": t_ci(ok.val_metric.to_numpy(dtype=float))[0],
               "n_seeds": len(ok), "metric_name": first.metric_name or "",
               "cocktail": bool(first.cocktail), "higher_is_better": higher,
               "setting": first.setting, "order": _order_key(first.reg_label,
                                                                 bool(first.cocktail))}
        for col in ("test_metric", "gap_metric"):
            mean, low, high, _ = t_ci(ok[col].to_numpy(dtype=float))
            row.update({f"{col}_mean": mean, f"{col}_ci_low": low, f"{col}_ci_high": high})
        rows.append(row)
    out = pd.DataFrame(rows)
    out = out.assign(_t=out.task, _a=out.arch).sort_values(
        ["_t", "_a", "order"], kind="stable").reset_index(drop=True)
    _vs_none(out, tc)
    out["best_val"] = False
    for _, g in out.groupby("setting", sort=False):
        i = _best_by_val(g)
        if i is not None:
            out.loc[i, "best_val"] = True
    return out[[*BUDGET_COLUMNS, "higher_is_better"]]


def _finals(tc: pd.DataFrame, study: str) -> pd.DataFrame:
    return tc[(tc.study == study) & (tc.role == "final") & (tc.status == "ok")]


def _pair(tc: pd.DataFrame, a: str, b: str) -> tuple[tuple, tuple]:
    """Paired tests (test metric, gap) of study a's final cells against study b's."""
    pair = _finals(tc, a).merge(_finals(tc, b), on="seed", suffixes=("", "_b"))
    if pair.empty:
        return NAN5, NAN5
    return (paired_test(pair.test_metric.to_numpy(dtype=float),
                        pair.test_metric_b.to_numpy(dtype=float)),
            paired_test(pair.gap_metric.to_numpy(dtype=float),
                        pair.gap_metric_b.to_numpy(dtype=float)))


def _none_study(frame: pd.DataFrame, setting: str) -> str | None:
    hit = frame[(frame.setting == setting) & (frame.regularizer == "none")]
    return str(hit.study.iloc[0]) if len(hit) else None


def _vs_none(out: pd.DataFrame, tc: pd.DataFrame) -> None:
    """Fill the Δ-vs-none columns in place (Holm within each task)."""
    cols = {"delta_test_vs_none": [], "delta_test_ci_low": [], "delta_test_ci_high": [],
            "p_test": [], "delta_gap_vs_none": [], "delta_gap_ci_low": [],
            "delta_gap_ci_high": [], "p_gap": [], "n_pairs": []}
    for r in out.itertuples(index=False):
        none = _none_study(out, r.setting)
        dt, dg = (NAN5, NAN5) if none is None or none == r.study else _pair(tc, r.study, none)
        for k, v in zip(("delta_test_vs_none", "delta_test_ci_low", "delta_test_ci_high",
                         "p_test"), dt):
            cols[k].append(v)
        for k, v in zip(("delta_gap_vs_none", "delta_gap_ci_low", "delta_gap_ci_high",
                         "p_gap"), dg):
            cols[k].append(v)
        cols["n_pairs"].append(int(dt[4]))
    for k, v in cols.items():
        out[k] = v
    out["p_test_holm"] = np.nan
    out["p_gap_holm"] = np.nan
    for _, g in out.groupby("task", sort=False):
        out.loc[g.index, "p_test_holm"] = holm(g.p_test.to_numpy(dtype=float))
        out.loc[g.index, "p_gap_holm"] = holm(g.p_gap.to_numpy(dtype=float))


def _best_by_val(g: pd.DataFrame) -> Any:
    """Index of the row with the best mean validation over the test seeds (ties: the better
    tuning score, then the table's order); None when no row has one."""
    s = g[np.isfinite(g.val_final_mean.astype(float))]
    if s.empty:
        return None
    sign = -1.0 if bool(s.higher_is_better.iloc[0]) else 1.0
    key = list(zip(sign * s.val_final_mean, (sign * s.val_selected).fillna(math.inf),
                   range(len(s))))
    return s.index[min(range(len(s)), key=lambda i: key[i])]


def across_cells(tc: pd.DataFrame) -> pd.DataFrame:
    """The final cells shaped like `tuned.tuned_cells` (task_label, arch_label, reg_label,
    seed, status, test_metric, higher_is_better) for `across.normalized_scores`."""
    f = tc[tc.role == "final"] if not tc.empty else tc
    cols = ["task_label", "arch_label", "reg_label", "seed", "status", "test_metric",
            "higher_is_better"]
    return f[cols].reset_index(drop=True) if not f.empty else pd.DataFrame(columns=cols)


COCKTAIL_COLUMNS = [
    "task", "arch", "cocktail", "selected", "n_on", "val_final_mean", "test_metric_mean",
    "test_metric_ci_low", "test_metric_ci_high", "best_single", "best_single_config",
    "best_single_val", "best_single_test_mean", "delta_test_vs_single", "delta_single_ci_low",
    "delta_single_ci_high", "p_single_holm", "delta_test_vs_none", "delta_test_ci_low",
    "delta_test_ci_high", "p_test_holm", "n_pairs", "metric_name",
]


def cocktails(v: pd.DataFrame, tc: pd.DataFrame) -> pd.DataFrame:
    """Each cocktail study against the best single-regularizer study of its setting (by mean
    validation over the test seeds; `none` excluded) and against none, paired by seed on the
    final cells; p Holm-corrected across this table (per comparison)."""
    if v.empty or not v.cocktail.any():
        return pd.DataFrame(columns=COCKTAIL_COLUMNS)
    v = v.assign(setting=v.task + " / " + v.arch)
    rows = []
    for r in v[v.cocktail].itertuples(index=False):
        singles = v[(v.setting == r.setting) & ~v.cocktail & (v.regularizer != "none")]
        i = _best_by_val(singles)
        single = singles.loc[i] if i is not None else None
        ds = _pair(tc, r.study, single.study)[0] if single is not None else NAN5
        none = _none_study(v, r.setting)
        dn = _pair(tc, r.study, none)[0] if none else NAN5
        rows.append({
            "task": r.task, "arch": r.arch, "cocktail": r.regularizer, "selected": r.config,
            "n_on": len(r.params.split(" + ")) if r.params else 0,
            "val_final_mean": r.val_final_mean, "test_metric_mean": r.test_metric_mean,
            "test_metric_ci_low": r.test_metric_ci_low,
            "test_metric_ci_high": r.test_metric_ci_high,
            "best_single": single.regularizer if single is not None else "",
            "best_single_config": single.config if single is not None else "",
            "best_single_val": single.val_final_mean if single is not None else math.nan,
            "best_single_test_mean": single.test_metric_mean if single is not None
            else math.nan,
            "delta_test_vs_single": ds[0], "delta_single_ci_low": ds[1],
            "delta_single_ci_high": ds[2], "p_single": ds[3], "delta_test_vs_none": dn[0],
            "delta_test_ci_low": dn[1], "delta_test_ci_high": dn[2], "p_none": dn[3],
            "n_pairs": int(ds[4] if single is not None else dn[4]),
            "metric_name": r.metric_name, "higher_is_better": r.higher_is_better})
    out = pd.DataFrame(rows)
    out["p_single_holm"] = holm(out.p_single.to_numpy(dtype=float))
    out["p_test_holm"] = holm(out.p_none.to_numpy(dtype=float))
    return out[[*COCKTAIL_COLUMNS, "higher_is_better"]]


TUNABILITY_COLUMNS = [
    "task", "arch", "regularizer", "default_strength", "default_lr", "config", "lr",
    "val_default", "val_tuned", "val_gain", "test_default", "test_tuned", "test_gain",
    "test_gain_ci_low", "test_gain_ci_high", "p_value_holm", "n_pairs", "metric_name",
]


def tunability(v: pd.DataFrame, tc: pd.DataFrame, grid: pd.DataFrame,
               infos: dict[str, StudyInfo] | None) -> pd.DataFrame:
    """Per non-cocktail study with stored baseline cells: the gain of the tuned configuration
    over the first default strength at the protocol lr (`evp.tunability`; positive =
    better), p Holm-corrected across the rows of one task."""
    infos = infos or {}
    rows = []
    for r in v[~v.cocktail].itertuples(index=False) if not v.empty else []:
        info = infos.get(r.study)
        if info is None or not info.baseline_ids:
            continue
        base = grid[grid.cell_id.isin(info.baseline_ids) & (grid.status == "ok")]
        fin = _finals(tc, r.study)
        if base.empty or fin.empty:
            continue
        pair = fin.merge(base, on="seed", suffixes=("", "_b"))
        t = evp.tunability(fin.val_metric.to_numpy(dtype=float),
                           base.val_metric.to_numpy(dtype=float),
                           pair.test_metric.to_numpy(dtype=float),
                           pair.test_metric_b.to_numpy(dtype=float), r.higher_is_better)
        rows.append({"task": r.task, "arch": r.arch, "regularizer": r.regularizer,
                     "default_strength": info.default_strength, "default_lr": info.lr0,
                     "config": r.config, "lr": r.lr,
                     "val_default": float(base.val_metric.astype(float).mean()),
                     "val_tuned": float(fin.val_metric.astype(float).mean()),
                     "val_gain": t.val_gain,
                     "test_default": float(base.test_metric.astype(float).mean()),
                     "test_tuned": float(fin.test_metric.astype(float).mean()),
                     "test_gain": t.test_gain, "test_gain_ci_low": t.test_ci_low,
                     "test_gain_ci_high": t.test_ci_high, "p_value": t.p_value,
                     "n_pairs": t.n_pairs, "metric_name": r.metric_name})
    out = pd.DataFrame(rows, columns=[*TUNABILITY_COLUMNS, "p_value"])
    for _, g in out.groupby("task", sort=False):
        out.loc[g.index, "p_value_holm"] = holm(g.p_value.to_numpy(dtype=float))
    return out[TUNABILITY_COLUMNS]


EVP_COLUMNS = ["task", "arch", "regularizer", "study", "k", "expected_best", "sd", "n_trials",
               "worst", "best", "metric_name", "higher_is_better"]


def evp_curves(v: pd.DataFrame, tc: pd.DataFrame) -> pd.DataFrame:
    """Expected best validation metric of k trials (without replacement) and its sd, for
    k = 1..n_trials, per study (`evp.expected_max_curve`; failed trials = the worst);
    `worst`, `best`: the study's worst and best finite trial scores (the range any best-of-k
    lies in)."""
    rows = []
    for r in v.itertuples(index=False) if not v.empty else []:
        scores = _trial_scores(tc[(tc.study == r.study) & (tc.role == "trial")])
        if scores.empty:
            continue
        values = scores.score.to_numpy(dtype=float)
        ks, means, sds = evp.expected_max_curve(values, bool(r.higher_is_better))
        finite = values[np.isfinite(values)]
        worst, best = (means[0], means[-1]) if not len(finite) else (
            (finite.min(), finite.max()) if r.higher_is_better else (finite.max(), finite.min()))
        rows += [{"task": r.task, "arch": r.arch, "regularizer": r.regularizer,
                  "study": r.study, "k": int(k), "expected_best": float(m), "sd": float(s),
                  "n_trials": len(scores), "worst": float(worst), "best": float(best),
                  "metric_name": r.metric_name,
                  "higher_is_better": bool(r.higher_is_better)}
                 for k, m, s in zip(ks, means, sds)]
    return pd.DataFrame(rows, columns=EVP_COLUMNS)


RANK_COLUMNS = ["regularizer", "budget", "mean_rank", "n_settings", "n_competitors"]


def rank_by_budget(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean rank (1 = best) across settings of each regularizer's expected validation
    performance at budgets 1, 2, 4, ..., N (`evp.budgets`); at a budget a setting ranks the
    studies that have that many trials. `n_competitors`: mean number ranked per setting."""
    if curves.empty:
        return pd.DataFrame(columns=RANK_COLUMNS)
    curves = curves.assign(setting=curves.task + " / " + curves.arch)
    ranked = []
    for k in evp.budgets(int(curves.k.max())):
        at = curves[curves.k == k].copy()
        signed = np.where(at.higher_is_better.astype(bool), 1.0, -1.0) * at.expected_best
        at["rank"] = pd.Series(signed, index=at.index).groupby(at.setting).rank(
            ascending=False, method="average")
        at["n"] = at.groupby("setting")["study"].transform("count")
        ranked.append(at.assign(budget=k))
    r = pd.concat(ranked)
    out = (r.groupby(["regularizer", "budget"], sort=False)
           .agg(mean_rank=("rank", "mean"), n_settings=("setting", "nunique"),
                n_competitors=("n", "mean")).reset_index())
    order = {reg: i for i, reg in enumerate(dict.fromkeys(curves.regularizer))}
    out["_o"] = out.regularizer.map(order)
    return out.sort_values(["_o", "budget"], kind="stable").reset_index(drop=True)[RANK_COLUMNS]


# -- display tables ---------------------------------------------------------------------
def protocol_words(v: pd.DataFrame) -> str:
    """`budget 6, sampler tpe` (every distinct pair of the rows, joined)."""
    pairs = dict.fromkeys(zip(v.budget.astype(int), v.sampler))
    return "; ".join(f"budget {b}, sampler {s}" for b, s in pairs)


def budget_table(v: pd.DataFrame, task: str, style: rt.Style) -> rt.DisplayTable:
    """The tuned-at-budget table of a task: one row per study."""
    s = v[v.task == task]
    metric = s.metric_name.iloc[0] or "metric"
    arrow = "higher is better" if bool(s.higher_is_better.iloc[0]) else "lower is better"
    cols = ["Arch", "Regularizer", "Selected configuration", "lr", "Trials ok",
            f"Val {metric} (tuning)", f"Val {metric} (test seeds)", "n", f"Test {metric}",
            f"Gap ({metric})", "Δ test vs none", "p (Holm)", "Δ gap vs none", "p gap (Holm)"]
    rows, bold = [], []
    for r in s.itertuples(index=False):
        rows.append([
            r.arch, r.regularizer, r.config or style.na,
            f"{r.lr:.3g}" if math.isfinite(r.lr) else style.na,
            f"{r.n_completed}/{r.budget}", rt._num(r.val_selected) or style.na,
            rt._num(r.val_final_mean) or style.na, str(r.n_seeds),
            rt.mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            rt.mean_ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high, style),
            rt.mean_ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high, style),
            rt.pvalue(r.p_test_holm, style),
            rt.mean_ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high, style),
            rt.pvalue(r.p_gap_holm, style)])
        b = bool(r.best_val)
        bold.append([False, b, False, False, False, False, b] + [False] * 7)
    caption = (f"{task}, tuned at equal budget ({protocol_words(s)}; the learning rate "
               "searched with the regularizer's knobs): each study's configuration with the "
               f"best mean validation {metric} over its tuning seeds (Val (tuning)) ran on "
               f"fresh test seeds; test {metric} ({arrow}) and gap there, mean ± 95% t-CI "
               "half-width over n seeds. Trials ok: configurations whose every cell trained "
               "ok, of the budget. Δ vs none: paired t-test against none's tuned "
               "configuration on the same seeds, p Holm-corrected across this table. Bold: "
               f"best mean validation {metric} on the test seeds per architecture. The grid's "
               f"tuned view instead has {CHOSEN_BY_GRID}.")
    return rt.DisplayTable(name=f"budget_{slug(task)}", title=f"Task {task} at "
                           f"{protocol_words(s)}", caption=caption,
                           frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:3])


def across_table(frame: pd.DataFrame, n_settings: int, friedman_p: float, power: str,
                 words: str, style: rt.Style) -> rt.DisplayTable:
    """The across-task table of the final cells (the grid's layout, this protocol's words;
    `power`: `across.power_line` of its rank tests)."""
    t = rt.across_table(frame, n_settings, friedman_p, power, style)
    caption = t.caption.replace("Across tasks, tuned view.", f"Across tasks, tuned at equal "
                                f"budget ({words}), on the final cells.")
    caption = caption.replace("0 = worst tuned cell", "0 = worst final cell")
    return replace(t, name="budget_across", title=f"Across tasks at equal budget ({words})",
                   caption=caption)


def cocktail_table(c: pd.DataFrame, words: str, style: rt.Style) -> rt.DisplayTable:
    """Each cocktail's selected members against the best single regularizer and none."""
    metric = c.metric_name.iloc[0] or "metric"
    cols = ["Task", "Arch", "Selected cocktail", f"Test {metric}", "Best single (by val)",
            f"Its test {metric}", "Δ test vs best single", "p (Holm)", "Δ test vs none",
            "p none (Holm)"]
    rows, bold = [], []
    for r in c.itertuples(index=False):
        rows.append([
            r.task, r.arch, r.selected,
            rt.mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            r.best_single_config or style.na, rt._num(r.best_single_test_mean) or style.na,
            rt.mean_ci(r.delta_test_vs_single, r.delta_single_ci_low, r.delta_single_ci_high,
                       style), rt.pvalue(r.p_single_holm, style),
            rt.mean_ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high,
                       style), rt.pvalue(r.p_test_holm, style)])
        sig = math.isfinite(r.p_single_holm) and r.p_single_holm < 0.05
        bold.append([False, False, False, False, False, False, sig, sig, False, False])
    caption = (f"Cocktails at equal budget ({words}): the members (and strengths) the "
               "cocktail search selected per setting on validation, against the "
               "single-regularizer study with the best mean validation metric on the test "
               "seeds and against none's tuned configuration, all at the same budget; "
               "Δ: paired t-test on the final cells of the same seeds (mean ± 95% t-CI "
               "half-width), p Holm-corrected across this table. Bold: the cocktail differs "
               "from the best single regularizer at 0.05.")
    return rt.DisplayTable(name="budget_cocktails", title=f"Cocktails at equal budget ({words})",
                           caption=caption, frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:3] + [
                               "Best single (by val)"])


def tunability_table(t: pd.DataFrame, words: str, style: rt.Style) -> rt.DisplayTable:
    """Validation and test gain of the tuned configuration over the default."""
    metric = t.metric_name.iloc[0] or "metric"
    cols = ["Task", "Arch", "Regularizer", "Default (strength, lr)", "Tuned configuration",
            "Tuned lr", f"Val {metric} gain", f"Test {metric} gain", "p (Holm)", "Pairs"]
    rows, bold = [], []
    for r in t.itertuples(index=False):
        ds = "—" if r.default_strength is None or not math.isfinite(r.default_strength) \
            else f"{r.default_strength:g}"
        rows.append([
            r.task, r.arch, r.regularizer,
            f"{ds if r.regularizer != 'none' else 'none'}, {r.default_lr:g}",
            r.config, f"{r.lr:.3g}", f"{r.val_gain:+.3f}" if math.isfinite(r.val_gain)
            else style.na,
            rt.mean_ci(r.test_gain, r.test_gain_ci_low, r.test_gain_ci_high, style),
            rt.pvalue(r.p_value_holm, style), str(r.n_pairs)])
        sig = math.isfinite(r.p_value_holm) and r.p_value_holm < 0.05
        bold.append([False] * 7 + [sig, sig, False])
    caption = (f"Tunability (Probst et al. 2019) at {words}: the tuned configuration against "
               "the regularizer's first default strength at the protocol's lr (grid cells on "
               "the same test seeds); gain = tuned - default, signed so that positive is "
               f"better for {metric}. Val gain: difference of the mean validation metrics; "
               "test gain: mean paired difference by seed ± 95% t-CI half-width, paired "
               "t-test, p Holm-corrected within each task. For none, only the lr was tuned. "
               "Cocktails have no default and are left out. Bold: p < 0.05.")
    return rt.DisplayTable(name="tunability", title=f"Tunability ({words})", caption=caption,
                           frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols),
                           name_columns=[*cols[:3], "Tuned configuration"])


@dataclass
class Parts:
    """Everything the budget section shows, computed once (`build`)."""

    view: pd.DataFrame
    words: str
    tests: Any  # across.RankTests on the final cells
    across: pd.DataFrame
    cocktails: pd.DataFrame
    tunability: pd.DataFrame
    curves: pd.DataFrame
    ranks: pd.DataFrame
    cells: pd.DataFrame  # the tune cells, parsed

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(self.view.task))

    def csv_frames(self) -> dict[str, pd.DataFrame]:
        """The section's CSV files (name -> frame); empty frames left out."""
        frames = {"budget.csv": self.view.drop(columns=["higher_is_better", "best_val"]),
                  "budget_across.csv": self.across,
                  "budget_cocktails.csv": self.cocktails.drop(columns=["higher_is_better"],
                                                              errors="ignore"),
                  "tunability.csv": self.tunability, "evp.csv": self.curves,
                  "rank_budget.csv": self.ranks}
        return {k: v for k, v in frames.items() if not v.empty}


CSV_NAMES = ("budget.csv", "budget_across.csv", "budget_cocktails.csv", "tunability.csv",
             "evp.csv", "rank_budget.csv")


def build(cells: pd.DataFrame, infos: dict[str, StudyInfo] | None = None) -> Parts | None:
    """The budget section of `cells` (a `Store.cells_frame()` subset holding grid and tune
    cells); None when no cell belongs to a tuning study."""
    from regbench.report import across as ax

    tc = tune_cells(cells)
    if tc.empty:
        return None
    v = view(tc, infos)
    scores = ax.normalized_scores(across_cells(tc))
    tests = ax.rank_tests(scores)
    agg = ax.aggregates(scores) if not scores.empty else pd.DataFrame()
    across = ax.across_frame(tests, agg) if not agg.empty else pd.DataFrame()
    curves = evp_curves(v, tc)
    return Parts(view=v, words=protocol_words(v), tests=tests, across=across,
                 cocktails=cocktails(v, tc), tunability=tunability(v, tc, grid_only(cells),
                                                                   infos),
                 curves=curves, ranks=rank_by_budget(curves), cells=tc)


def pairs(parts: Parts, both: Any) -> list[tuple[rt.DisplayTable, rt.DisplayTable]]:
    """The section's (md, tex) display tables, in index order; `both(make, *args)` builds
    one table in both styles (write.py's `_both`)."""
    from regbench.report import across as ax

    out = [both(budget_table, parts.view, t) for t in parts.tasks]
    if not parts.across.empty:
        out.append(both(across_table, parts.across, len(parts.tests.settings),
                        parts.tests.friedman_p, ax.power_line(parts.tests), parts.words))
    if not parts.cocktails.empty:
        out.append(both(cocktail_table, parts.cocktails, parts.words))
    if not parts.tunability.empty:
        out.append(both(tunability_table, parts.tunability, parts.words))
    return out
