"""Seed 002, the lecture "Regularization Methods for Neural Networks" (STAT 453, lecture
10): penalty vs SGD weight decay, inverted dropout, eval mode, early stopping, more data."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from torch import nn

from regbench import seeding
from regbench.claims.base import (
    Claim,
    Context,
    Outcome,
    cell,
    fmt,
    fmt_list,
    register_claim,
    verdict,
)
from regbench.report.stats import t_ci
from regbench.specs import ArchSpec, Cell


def _tiny_net(gen: torch.Generator) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.5, 0.5, generator=gen)
    return net


def penalty_vs_decay(seed: int, lam: float = 1.0, n: int = 32, steps: int = 50,
                     penalize: bool = True) -> float:
    """Max |theta_penalty - theta_decay| / max |theta| after `steps` SGD steps (float64).

    A: mean MSE + (lam/(2n)) sum ||W||^2 over weight matrices, plain SGD.
    B: mean MSE, SGD(weight_decay=lam/n) on the weight group (regbench.optim.make_optimizer).
    With `penalize=False` A has no penalty: the control that shows the check has power.
    """
    from regbench.optim import make_optimizer
    from regbench.regularizers.base import OptimConfig, decay_params

    gen = seeding.generator("init", seed, "claims", "penalty-vs-decay")
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    a = _tiny_net(gen)
    b = _tiny_net(torch.Generator())  # overwritten below: same start as a
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(a, OptimConfig("sgd", lr=0.05, momentum=0.9))
    opt_b = make_optimizer(b, OptimConfig("sgd", lr=0.05, momentum=0.9, weight_decay=lam / n))
    for _ in range(steps):
        loss_a = nn.functional.mse_loss(a(x), y)
        if penalize:
            loss_a = loss_a + lam / (2 * n) * sum(w.pow(2).sum() for w in decay_params(a)[0])
        opt_a.zero_grad()
        loss_a.backward()
        opt_a.step()
        opt_b.zero_grad()
        nn.functional.mse_loss(b(x), y).backward()
        opt_b.step()
    ta = torch.cat([p.detach().flatten() for p in a.parameters()])
    tb = torch.cat([p.detach().flatten() for p in b.parameters()])
    return float((ta - tb).abs().max() / tb.abs().max())


@register_claim("penalty-equals-sgd-decay")
class PenaltyEqualsSgdDecay(Claim):
    """002: the penalty (lambda/2n)||w||^2 on weights and SGD weight decay give the same updates."""

    source = "002"
    text = ("the penalty (lambda/2n)||w||^2 on weights only and SGD weight_decay=lambda/n give "
            "the same updates")
    criterion = "max relative parameter difference after 50 SGD+momentum steps (float64) < 1e-12"
    kind = "direct"
    seeds = 10

    # Why: in float64 the two differ only in rounding order (~1e-16 per step); 1e-12 leaves
    # room for 50 steps of accumulation while any real difference (the control without the
    # penalty) is of order 1e-2.
    MAX_REL = 1e-12

    def evaluate(self, ctx: Context) -> Outcome:
        d = [penalty_vs_decay(s) for s in range(ctx.seeds)]
        control = [penalty_vs_decay(s, penalize=False) for s in range(ctx.seeds)]
        m, lo, hi, n = t_ci(d)
        return Outcome("max relative parameter difference", m, lo, hi, n,
                       verdict(max(d) < self.MAX_REL),
                       f"max {fmt(max(d))}; control without the penalty: min "
                       f"{fmt(min(control))}", "tiny MLP 5-16-1, n=32, lambda=1, lr 0.05, "
                       "momentum 0.9, regbench.optim.make_optimizer")


def dropout_means(seed: int, p: float, draws: int = 200, numel: int = 4096
                  ) -> dict[str, float]:
    """E[dropout(x)] / x (pooled over elements and draws) for native and fused dropout."""
    from regbench import kernels

    gen = seeding.generator("dropout", seed, "claims", "expectation", p)
    x = torch.rand(numel, generator=gen) + 0.5  # positive activations, as after a ReLU
    out = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive("torch", seed, "claims", "expectation", p))
        drop = nn.Dropout(p).train()
        out["native"] = float(sum(drop(x).sum() for _ in range(draws)) / (draws * x.sum()))
    key = seeding.derive("dropout", seed, "claims", "fused", p)
    step = math.ceil(numel / 4)
    out["fused"] = float(sum(kernels.dropout(x, p, key, i * step).sum() for i in range(draws))
                         / (draws * x.sum()))
    return out


@register_claim("inverted-dropout-expectation")
class InvertedDropoutExpectation(Claim):
    """002: inverted dropout (scale 1/(1-p) in training) keeps the expected activation."""

    source = "002"
    text = "dropout with inverted scaling keeps the expected activation: E[dropout(a)] = a"
    criterion = "|E[y]/a - 1| < 0.01 for p in {0.2, 0.5, 0.8}, native and fused dropout"
    kind = "direct"
    seeds = 5
    PS = (0.2, 0.5, 0.8)

    # Why: 200 draws x 4096 elements give a Monte-Carlo sd of sqrt(p/(1-p)/819200) <= 0.0022
    # at p = 0.8, so 0.01 is >4 sd; dropout without the rescaling would be off by p >= 0.2.
    MAX_DEV = 0.01

    def evaluate(self, ctx: Context) -> Outcome:
        res = {(b, p): [] for b in ("native", "fused") for p in self.PS}
        for s in range(ctx.seeds):
            for p in self.PS:
                for b, v in dropout_means(s, p).items():
                    res[(b, p)].append(v)
        worst = max(res, key=lambda k: abs(np.mean(res[k]) - 1))
        m, lo, hi, n = t_ci(res[worst])
        ok = all(abs(np.mean(v) - 1) < self.MAX_DEV for v in res.values())
        parts = [f"{b} p={p}: {fmt(np.mean(v), 5)}" for (b, p), v in res.items()]
        return Outcome(f"E[y]/a at the worst case ({worst[0]}, p={worst[1]})", m, lo, hi, n,
                       verdict(ok), "; ".join(parts) + "; without rescaling: 1-p = "
                       + ", ".join(f"{1 - p:g}" for p in self.PS))


def eval_identity_mismatches(seed: int) -> int:
    """Elements where eval-mode dropout differs from the identity (0 = bitwise identical)."""
    import copy

    from regbench.archs.base import Knobs
    from regbench.nn import FusedDropout
    from regbench.registry import ARCHS
    from regbench.tasks.base import TaskData

    gen = seeding.generator("dropout", seed, "claims", "eval-identity")
    x = torch.randn(64, 8, generator=gen)
    bad = 0
    for p in (0.1, 0.5, 0.9, 1.0):
        for mod in (nn.Dropout(p), FusedDropout(p, seed=seed)):
            bad += int((mod.eval()(x) != x).sum())
    # a whole model: the mlp with dropout 0.5 in eval mode == the same weights, dropout removed
    data = TaskData(x, torch.zeros(64, 1), x, x, x, x, "regression", 1, "rmse")
    model = ARCHS.get("mlp")().build(ArchSpec("mlp"), data, Knobs(dropout=0.5))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive("init", seed, "claims", "eval-identity"))
        for prm in model.parameters():
            nn.init.uniform_(prm, -0.3, 0.3)
    plain = copy.deepcopy(model)
    for i, m in enumerate(plain):
        if isinstance(m, nn.Dropout):
            plain[i] = nn.Identity()
    with torch.no_grad():
        bad += int((model.eval()(x) != plain.eval()(x)).sum())
    return bad


@register_claim("eval-mode-identity")
class EvalModeIdentity(Claim):
    """002: in eval mode dropout is the identity (model.eval() switches it off)."""

    source = "002"
    text = "dropout is only active in training: in eval mode it is the identity"
    criterion = "bitwise identical outputs (0 mismatching elements) on every seed"
    kind = "direct"
    seeds = 5

    # Why: the identity is exact by contract (DESIGN.md: training=False returns the input),
    # so any mismatching element is a failure; no tolerance is needed.

    def evaluate(self, ctx: Context) -> Outcome:
        bad = [eval_identity_mismatches(s) for s in range(ctx.seeds)]
        m, lo, hi, n = t_ci(bad)
        return Outcome("mismatching elements", m, lo, hi, n, verdict(sum(bad) == 0),
                       f"per seed {bad}; nn.Dropout and FusedDropout at p=0.1/0.5/0.9/1.0, and "
                       "an mlp with dropout 0.5 vs the same weights without dropout")


@register_claim("early-stopping-best-epoch")
class EarlyStoppingBestEpoch(Claim):
    """002: early stopping picks (and restores) the epoch with the best validation score."""

    source = "002"
    text = "early stopping picks the epoch with the best validation score"
    criterion = ("on every seed: best_epoch = argmin of the stored val-loss curve and the "
                 "restored model's val loss = that minimum (rel. 1e-5)")
    seeds = 5
    PATIENCE = 10.0

    # Why: this is the mechanism, exact by construction; 1e-5 only absorbs float32 rounding
    # between the per-epoch evaluation (val and test in one batch) and the final one.
    REL = 1e-5

    def cells(self, seeds: int) -> list[Cell]:
        return [cell("curve", "mlp", reg, st, s)
                for reg, st in (("early_stopping", self.PATIENCE), ("none", 0.0))
                for s in range(seeds)]

    def evaluate(self, ctx: Context) -> Outcome:
        stat = "fraction of seeds where the restored epoch is the best"
        if (o := self.not_run(ctx, stat)) is not None:
            return o
        n = ctx.seeds
        cs = self.cells(n)
        good, info, es_test, none_test = [], [], [], []
        for c, c0 in zip(cs[:n], cs[n:]):
            r, cur = ctx.stored.row(c), ctx.stored.curve(c)
            i = int(cur.val_loss.values.argmin())
            best_ep, best_val = int(cur.epoch.values[i]), float(cur.val_loss.values[i])
            same = (int(r["best_epoch"]) == best_ep
                    and abs(r["val_loss"] - best_val) <= self.REL * abs(best_val))
            good.append(float(same))
            info.append(f"{best_ep}/{int(r['epochs'])}")
            es_test.append(r["test_metric"])
            none_test.append(ctx.stored.row(c0)["test_metric"])
        m, lo, hi, k = t_ci(good)
        return Outcome(stat, m, lo, hi, k, verdict(min(good) == 1.0),
                       f"best/stopped epoch per seed {info}; test RMSE early-stopped "
                       f"{fmt_list(es_test, 3)} vs none (300 epochs) {fmt_list(none_test, 3)}",
                       f"curve, mlp, patience {self.PATIENCE:g}")


@register_claim("more-data-shrinks-gap")
class MoreDataShrinksGap(Claim):
    """002: more training data shrinks the generalization gap (learning curve)."""

    source = "002"
    text = "more training data shrinks the gap between train and test performance"
    criterion = ("gap(10% of data) - gap(100%) CI low > 0 and Spearman rho(fraction, mean "
                 "gap) <= -0.9")
    seeds = 5
    FRACTIONS = (0.1, 0.25, 0.5, 0.75)

    # Why: the paired drop from the smallest to the full training set must exclude 0, and the
    # curve must be (nearly) monotone: with 5 fractions rho <= -0.9 allows one adjacent swap.
    MAX_RHO = -0.9

    def cells(self, seeds: int) -> list[Cell]:
        out = [cell("digits", "mlp", "more_data", f, s) for f in self.FRACTIONS
               for s in range(seeds)]
        return out + [cell("digits", "mlp", "none", 0.0, s) for s in range(seeds)]

    def evaluate(self, ctx: Context) -> Outcome:
        stat = "gap(10%) - gap(100%) (accuracy points)"
        if (o := self.not_run(ctx, stat)) is not None:
            return o
        n = ctx.seeds
        cs = self.cells(n)
        fr = [*self.FRACTIONS, 1.0]
        gaps = np.array([[ctx.stored.row(cs[i * n + s])["gap_metric"] for s in range(n)]
                         for i in range(len(fr))])
        diff = 100 * (gaps[0] - gaps[-1])
        rho = float(stats.spearmanr(fr, gaps.mean(axis=1)).statistic)
        m, lo, hi, k = t_ci(diff)
        return Outcome(stat, m, lo, hi, k, verdict(lo > 0 and rho <= self.MAX_RHO),
                       f"fractions {fr}: mean gap {fmt_list(100 * gaps.mean(axis=1), 3)} points; "
                       f"Spearman rho {fmt(rho)}", "digits, mlp, nested subsets (more_data)")


@register_claim("dropconnect-vs-dropout")
class DropConnectVsDropout(Claim):
    """002: DropConnect "doesn't work so well in practice" compared with dropout."""

    source = "002"
    text = ("DropConnect (masks on weights) doesn't work so well in practice compared with "
            "dropout (masks on units)")
    criterion = ("tuned on validation per task, the mean over the default tasks of the "
                 "relative test-error reduction of dropout over DropConnect has a t-CI "
                 "(over tasks) with low > 0")
    fast = False
    seeds = 5
    TASKS = ("curve", "periodic", "digits", "breast_cancer", "diabetes")

    # Why: "works less well" across tasks is a statement about the typical task, so the unit
    # is a task (its tuned, seed-averaged test error), and the interval is over tasks; a
    # relative error puts rmse and accuracy tasks on one scale. Strengths are each
    # regularizer's default sweep (the default matrix's cells for dropout), selected on
    # validation as the report does; the test set chooses nothing.
    def _strengths(self, name: str) -> tuple[float, ...]:
        from regbench.registry import REGULARIZERS

        return REGULARIZERS.get(name).default_strengths

    def cells(self, seeds: int) -> list[Cell]:
        return [cell(t, "mlp", r, p, s) for t in self.TASKS for r in ("dropout", "dropconnect")
                for p in self._strengths(r) for s in range(seeds)]

    def _tuned(self, ctx: Context, task: str, reg: str) -> tuple[float, np.ndarray]:
        """(selected strength, per-seed test error at it)."""
        n = ctx.seeds
        best: tuple[float, float, np.ndarray] | None = None
        for p in self._strengths(reg):
            rows = [ctx.stored.row(cell(task, "mlp", reg, p, s)) for s in range(n)]
            higher = bool(rows[0]["higher_is_better"])
            val = float(np.mean([r["val_metric"] for r in rows]))
            score = val if higher else -val
            err = np.array([(1 - r["test_metric"]) if higher else r["test_metric"]
                            for r in rows], dtype=float)
            if best is None or score > best[1]:  # ties keep the weaker (first) strength
                best = (p, score, err)
        assert best is not None
        return best[0], best[2]

    def evaluate(self, ctx: Context) -> Outcome:
        stat = "relative test-error reduction, dropout vs DropConnect (mean over tasks)"
        if (o := self.not_run(ctx, stat)) is not None:
            return o
        rel, parts = [], []
        for task in self.TASKS:
            p_do, e_do = self._tuned(ctx, task, "dropout")
            p_dc, e_dc = self._tuned(ctx, task, "dropconnect")
            rel.append(float((e_dc.mean() - e_do.mean()) / e_dc.mean()))
            pv = float(stats.ttest_rel(e_do, e_dc).pvalue) if len(e_do) > 1 else math.nan
            parts.append(f"{task}: dropout p={p_do:g} {fmt(e_do.mean())} vs dropconnect "
                         f"p={p_dc:g} {fmt(e_dc.mean())} (paired p {fmt(pv, 2)})")
        m, lo, hi, k = t_ci(rel)
        return Outcome(stat, m, lo, hi, ctx.seeds, verdict(lo > 0),
                       f"{fmt_list(rel)} over {k} tasks; " + "; ".join(parts),
                       "mlp, default strengths, test error = 1 - accuracy or rmse")
def linear_geometric_gap(seed: int, p: float = 0.5, d: int = 10, k: int = 4, n: int = 20
                         ) -> tuple[float, float]:
    """(max |normalized geometric mean - weight-scaled softmax|, the same for the arithmetic
    mean) for softmax regression with dropout on its d inputs, over all 2^d masks (float64).

    Sub-network m computes softmax(W (m * x) / (1 - p) + b) (inverted dropout, keep
    probability 1 - p); the weight-scaled model computes softmax(W x + b) (the same as the
    lecture's "scale by 1 - p" for non-inverted dropout). The geometric mean weights mask m
    by its probability (1-p)^|m| p^(d-|m|) (all equal at p = 0.5, the lecture's formula).
    """
    gen = seeding.generator("init", seed, "claims", "geometric-mean", p)
    w = torch.randn(k, d, generator=gen, dtype=torch.float64)
    b = torch.randn(k, generator=gen, dtype=torch.float64)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    q = 1.0 - p
    masks = torch.tensor([[(i >> j) & 1 for j in range(d)] for i in range(2**d)],
                         dtype=torch.float64)  # (2^d, d)
    prob = q ** masks.sum(1) * p ** (d - masks.sum(1))  # (2^d,)
    z = (masks[:, None, :] * x[None] / q) @ w.T + b  # (2^d, n, k)
    logp = torch.log_softmax(z, dim=-1)
    geo = torch.softmax((prob[:, None, None] * logp).sum(0), dim=-1)  # normalized geo. mean
    arith = (prob[:, None, None] * logp.exp()).sum(0)
    scaled = torch.softmax(x @ w.T + b, dim=-1)
    return float((geo - scaled).abs().max()), float((arith - scaled).abs().max())


def mlp_weight_scaling_gap(seed: int, p: float = 0.5, draws: int = 100, epochs: int = 10
                           ) -> dict[str, float]:
    """An mlp with dropout p trained on digits (Adam, batch 128), then on the test split:
    mean total-variation distance between the weight-scaled (eval-mode) predictions and a
    Monte-Carlo average over `draws` dropout masks (arithmetic mean of the probabilities,
    and normalized geometric mean), the same between two independent Monte-Carlo averages
    (the sampling noise floor), and the test accuracy of each."""
    from regbench.archs.base import Knobs
    from regbench.inits import init_model
    from regbench.registry import ARCHS, TASKS
    from regbench.specs import TaskSpec

    data = TASKS.get("digits")().load(TaskSpec("digits"), seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive("torch", seed, "claims", "weight-scaling-mlp"))
        model = ARCHS.get("mlp")().build(ArchSpec("mlp"), data, Knobs(dropout=p))
        init_model(model, "regbench", seeding.derive("init", seed, "claims", "ws-mlp"))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = seeding.generator("order", seed, "claims", "ws-mlp")
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(data.x_train), generator=order).split(128):
                opt.zero_grad()
                nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
                opt.step()
        with torch.no_grad():
            x, y = data.x_test, data.y_test
            scaled = torch.softmax(model.eval()(x), dim=-1)
            model.train()
            runs = [torch.log_softmax(model(x), dim=-1) for _ in range(2 * draws)]
    first, second = torch.stack(runs[:draws]), torch.stack(runs[draws:])
    arith, arith2 = first.exp().mean(0), second.exp().mean(0)
    geo = torch.softmax(first.mean(0), dim=-1)

    def tv(a: torch.Tensor, c: torch.Tensor) -> float:
        return float(0.5 * (a - c).abs().sum(1).mean())

    def acc(a: torch.Tensor) -> float:
        return float((a.argmax(1) == y).double().mean())

    return {"tv_arith": tv(scaled, arith), "tv_geo": tv(scaled, geo),
            "tv_noise": tv(arith, arith2), "acc_scaled": acc(scaled), "acc_arith": acc(arith),
            "acc_geo": acc(geo)}


@register_claim("weight-scaling-geometric-mean")
class WeightScalingGeometricMean(Claim):
    """002: weight scaling at inference is exactly the geometric mean for a linear model."""

    source = "002"
    text = ("scaling the weights by the keep probability at inference approximates the "
            "(normalized) geometric mean of the sub-networks' predictions, and is exactly it "
            "for a linear model")
    criterion = ("softmax regression with input dropout p in {0.2, 0.5}, all 2^10 masks "
                 "(float64): max |geometric mean - weight-scaled| < 1e-12 on every seed; the "
                 "mlp's Monte-Carlo gap is reported")
    kind = "direct"
    seeds = 3
    PS = (0.2, 0.5)

    # Why: exactness holds algebraically (the mask-weighted mean of the logits is the
    # weight-scaled logit; the log-partition term cancels in the normalization), so only
    # float64 rounding (~1e-16 per term, 1024 terms) may remain; 1e-12 leaves room for it,
    # while the arithmetic mean of the same sub-networks (the control) differs by ~1e-2.
    # For the mlp the claim says "approximates": its gap is measured, not tested.
    MAX_DIFF = 1e-12

    def evaluate(self, ctx: Context) -> Outcome:
        lin = [[linear_geometric_gap(s, p) for p in self.PS] for s in range(ctx.seeds)]
        geo = [max(g for g, _ in row) for row in lin]
        arith = [min(a for _, a in row) for row in lin]
        mlp = [mlp_weight_scaling_gap(s) for s in range(ctx.seeds)]
        m, lo, hi, n = t_ci(geo)
        mean = {k: float(np.mean([r[k] for r in mlp])) for k in mlp[0]}
        _, tlo, thi, _ = t_ci([r["tv_arith"] for r in mlp])
        return Outcome(
            "max |geometric mean - weight-scaled| (linear)", m, lo, hi, n,
            verdict(max(geo) < self.MAX_DIFF),
            f"linear: max {fmt(max(geo))}, arithmetic mean instead (control): min "
            f"{fmt(min(arith))}; mlp 3x64 dropout 0.5 on digits, 100 masks: mean total-"
            f"variation weight-scaled vs MC arithmetic mean {fmt(mean['tv_arith'])} "
            f"[{fmt(tlo)}, {fmt(thi)}], vs MC geometric mean {fmt(mean['tv_geo'])}, MC vs MC "
            f"(noise floor) {fmt(mean['tv_noise'])}; test accuracy weight-scaled "
            f"{fmt(mean['acc_scaled'], 4)}, MC arithmetic {fmt(mean['acc_arith'], 4)}, MC "
            f"geometric {fmt(mean['acc_geo'], 4)}",
            "linear: d=10 inputs, 4 classes, Gaussian W, b, x; mlp: Adam 1e-3, 10 epochs")


def rank_relation(x: np.ndarray, y: np.ndarray, seed: int, n_perm: int = 20000,
                  n_boot: int = 2000) -> tuple[float, float, float, float]:
    """(Spearman rho, bootstrap 95% CI low, high, one-sided permutation p-value for rho > 0):
    the CI resamples the settings (pairs) with replacement, the p-value permutes y; both
    from a seeded generator. p = (1 + #{rho_perm >= rho}) / (1 + n_perm)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rho = float(stats.spearmanr(x, y).statistic)
    rng = seeding.numpy_rng("regularizer", seed, "claims", "rank-relation")
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    perms = np.array([rng.permutation(ry) for _ in range(n_perm)])
    cx, cp = rx - rx.mean(), perms - perms.mean(1, keepdims=True)
    rho_perm = (cp @ cx) / (np.sqrt((cp**2).sum(1)) * np.sqrt((cx**2).sum()))
    p = float((1 + np.sum(rho_perm >= rho - 1e-12)) / (1 + n_perm))
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        if len(set(x[i])) > 1 and len(set(y[i])) > 1:
            boots.append(stats.spearmanr(x[i], y[i]).statistic)
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (math.nan, math.nan)
    return rho, float(lo), float(hi), p


@register_claim("dropout-needs-overfitting")
class DropoutNeedsOverfitting(Claim):
    """002: don't use dropout if the model does not overfit (its gain follows the gap)."""

    source = "002"
    text = ("don't use dropout if your model does not overfit: dropout's gain grows with the "
            "unregularized model's overfitting")
    criterion = ("across the default matrix's settings with none and dropout: Spearman rho "
                 "(none's relative gap, dropout's validation-tuned relative test-loss gain) "
                 "> 0 with one-sided permutation p < 0.05")
    fast = False
    seeds = 5

    # Why: the advice implies an ordering: the less a model overfits, the less dropout helps
    # (or the more it hurts). Units differ across tasks, so the gap is relative, (test loss -
    # train loss) / test loss of none (mean over seeds), and the gain is relative, (test loss
    # none - test loss dropout) / test loss none, at the dropout p with the lowest mean
    # validation loss (test never used to choose). A rank correlation needs no model of the
    # relation; with ~8 settings the permutation p-value is the honest test, and the
    # bootstrap CI over settings shows how loose rho is.
    ALPHA = 0.05

    def cells(self, seeds: int) -> list[Cell]:
        from regbench import matrix

        cells = matrix.get("default").expand(seeds=seeds, regularizers=["none", "dropout"]).cells
        return [c for c in cells if not c.reg.params]  # the fused variant repeats native

    def evaluate(self, ctx: Context) -> Outcome:
        stat = "Spearman rho(relative gap of none, tuned relative gain of dropout)"
        if (o := self.not_run(ctx, stat)) is not None:
            return o
        settings: dict[tuple, dict[str, dict[float, list]]] = {}
        for c in self.cells(ctx.seeds):
            key = (c.task.label(), c.arch.label(), c.protocol)
            r = ctx.stored.row(c)
            settings.setdefault(key, {}).setdefault(c.reg.name, {}).setdefault(
                c.reg.strength, []).append((c.seed, r["train_loss"], r["val_loss"],
                                            r["test_loss"]))
        gaps, gains, parts = [], [], []
        for (task, arch, _), regs in settings.items():
            if "none" not in regs or "dropout" not in regs:
                continue
            none = {s: (tr, te) for s, tr, _, te in regs["none"][0.0]}
            gap = np.mean([(te - tr) / te for tr, te in none.values()])
            p = min(regs["dropout"], key=lambda q: (np.mean([v for _, _, v, _ in
                                                             regs["dropout"][q]]), q))
            gain = np.mean([(none[s][1] - te) / none[s][1] for s, _, _, te in
                            regs["dropout"][p]])
            gaps.append(gap)
            gains.append(gain)
            parts.append(f"{task}/{arch}: gap {fmt(gap, 2)}, p={p:g} gain {fmt(gain, 2)}")
        rho, lo, hi, pval = rank_relation(np.array(gaps), np.array(gains), 0)
        return Outcome(stat, rho, lo, hi, ctx.seeds, verdict(rho > 0 and pval < self.ALPHA),
                       f"{len(gaps)} settings, permutation p = {fmt(pval)}; " + "; ".join(parts),
                       "CI: bootstrap over settings (not a t-interval); cells of the default "
                       "matrix (none and native dropout)")
