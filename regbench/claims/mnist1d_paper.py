"""The MNIST-1D paper (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D",
ICML 2024): its baseline table, reproduced with its own recipe (matrix `mnist1d-paper`).

Not one of the seed documents: the source is the paper, named in `source`.
"""

from __future__ import annotations

import numpy as np

from regbench.claims.base import Claim, Context, Outcome, fmt, register_claim, verdict
from regbench.report.stats import t_ci
from regbench.specs import Cell

# the paper's test accuracies (%) for its baselines, and the regbench architecture of each
PAPER_ACCURACY = {"linear": 32.0, "mlp_residual": 68.0, "cnn1d": 94.0}
MODEL_NAMES = {"linear": "logistic", "mlp_residual": "MLP", "cnn1d": "CNN"}


@register_claim("mnist1d-baselines")
class Mnist1DBaselines(Claim):
    """MNIST-1D paper: logistic regression 32%, MLP 68%, CNN 94% test accuracy."""

    source = "MNIST-1D paper"
    text = ("on MNIST-1D (4000 train / 1000 test) logistic regression reaches 32%, the MLP "
            "68% and the CNN 94% test accuracy (Adam 1e-2, batch 100, 8000 steps)")
    criterion = ("each model's mean test accuracy over seeds within 3 points of the paper's "
                 "(|mean - paper| <= 3 for logistic, MLP and CNN)")
    fast = False
    seeds = 5

    # Why 3 points: the paper reports one number per model from a single run; on a 1000-sample
    # test set its binomial standard error is up to 1.5 points (at 68%), so a single run lies
    # within about 3 points (2 SE) of the model's expected accuracy. Init and batch order add
    # seed-to-seed spread of the same size. Our mean over 5 seeds has a smaller error; the
    # tolerance is for the paper's number. Differences of recipe we cannot remove: we shuffle
    # the batches each epoch (the paper cycles through them in a fixed order), and our
    # regenerated dataset is the package's make_dataset with seed 42 (the paper's frozen
    # pickle was made by the same code but not byte-checked here).
    TOLERANCE = 3.0

    def cells(self, seeds: int) -> list[Cell]:
        from regbench import matrix

        return matrix.get("mnist1d-paper").expand(seeds=seeds).cells

    def evaluate(self, ctx: Context) -> Outcome:
        stat = "worst model: mean test accuracy - paper (points)"
        if (o := self.not_run(ctx, stat)) is not None:
            return o
        acc: dict[str, list[float]] = {a: [] for a in PAPER_ACCURACY}
        for c in self.cells(ctx.seeds):
            acc[c.arch.name].append(100 * float(ctx.stored.row(c)["test_metric"]))
        devs, parts = {}, []
        for arch, paper in PAPER_ACCURACY.items():
            m, lo, hi, n = t_ci(np.array(acc[arch]))
            devs[arch] = (abs(m - paper), m - paper, lo - paper, hi - paper, n)
            parts.append(f"{MODEL_NAMES[arch]} {fmt(m, 3)}% [{fmt(lo, 3)}, {fmt(hi, 3)}] vs "
                         f"paper {paper:g}%")
        worst = max(devs, key=lambda a: devs[a][0])
        _, d, dlo, dhi, n = devs[worst]
        ok = all(v[0] <= self.TOLERANCE for v in devs.values())
        return Outcome(stat, d, dlo, dhi, n, verdict(ok),
                       "; ".join(parts) + f"; worst: {MODEL_NAMES[worst]}",
                       "matrix mnist1d-paper: val_fraction 0 (all 4000 train samples), "
                       "inputs as the package scales them; the value is the worst model's "
                       "mean - paper, signed")
