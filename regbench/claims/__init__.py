"""The seed documents' claims as checked experiments (`regbench claims`).

Each claim names its source document (000..004), states the claim, builds a seeded
setup as regbench cells (run through the store, so they resume and are never rerun)
or, where the claim is not about a training run, computes it directly and
deterministically (seeded via `regbench.seeding`). It then measures one statistic
with a 95% Student-t CI over seeds and applies a pass criterion that is written in
the claim's code, with the reason for its threshold, *before* any run. Every verdict
comes with the numbers behind it; "no" is a result, never a reason to move a threshold.

`claims_frame(store)` evaluates the claims from what is stored without running any
cell (missing cells give "not run"); `run_claims(...)` runs what is missing first.

Layout: `base` (Outcome, Claim, the registry, store access, formatting helpers), one
module per source document (`seed000_talk` .. `seed004_article`, then `mnist1d_paper` for
the MNIST-1D paper; importing one registers its claims, and they are imported below in
source order, which is the registry's order),
and `run` (select, evaluate, run, render).
"""

from regbench.claims.base import (
    CLAIMS,
    COLUMNS,
    CURVE_NOISE,
    VERDICTS,
    Claim,
    Context,
    Outcome,
    Stored,
    bikes_missing,
    cell,
    fmt,
    fmt_list,
    geo_ci,
    register_claim,
    verdict,
)
from regbench.claims.run import claim_cells, claims_frame, render_table, run_claims, select
from regbench.claims.seed000_talk import (
    WIDE_PROTOCOL,
    Poly19Overfits,
    WideMagic,
    WideMagicTalk,
    curve_arrays,
    poly_fit,
    talk_mlp,
)
from regbench.claims.seed001_lecture_notes import (
    DoubleDescent,
    PeakTest,
    WeightDecayEqualsL2,
    peak_test,
)
from regbench.claims.seed002_stat453 import (
    DropConnectVsDropout,
    DropoutNeedsOverfitting,
    EarlyStoppingBestEpoch,
    EvalModeIdentity,
    InvertedDropoutExpectation,
    MoreDataShrinksGap,
    PenaltyEqualsSgdDecay,
    WeightScalingGeometricMean,
    dropout_means,
    eval_identity_mismatches,
    linear_geometric_gap,
    mlp_weight_scaling_gap,
    penalty_vs_decay,
    rank_relation,
)
from regbench.claims.seed003_special_layers import (
    BatchnormAllowsHigherLR,
    BatchnormInitSensitivity,
    BatchnormSpeedsTraining,
    BikesRegularizedBetter,
    L1ZerosL2Shrinks,
)
from regbench.claims.seed004_article import (
    DropoutHighPPredictsMean,
    DropoutOneLearnsNothing,
    DropoutWiderThanL2,
    L2ConcentratesParams,
    L2LargePredictsMean,
    periodic_cells,
    pred_var_ratio,
)

# isort: split
# after the seed documents, so that the registry (and the claims table) keeps source order
from regbench.claims.mnist1d_paper import PAPER_ACCURACY, Mnist1DBaselines

# isort: split
from regbench.claims.equal_budget import EqualBudgetChangesRanking, ranking_change

__all__ = [
    "CLAIMS", "COLUMNS", "CURVE_NOISE", "VERDICTS", "WIDE_PROTOCOL",
    "Claim", "Context", "Outcome", "Stored",
    "cell", "fmt", "fmt_list", "geo_ci", "register_claim", "verdict",
    "select", "claims_frame", "claim_cells", "run_claims", "render_table",
    "curve_arrays", "poly_fit", "talk_mlp", "penalty_vs_decay", "dropout_means",
    "eval_identity_mismatches", "bikes_missing", "periodic_cells", "pred_var_ratio",
    "Poly19Overfits", "WideMagic", "WideMagicTalk",
    "DoubleDescent", "PeakTest", "peak_test", "WeightDecayEqualsL2",
    "PenaltyEqualsSgdDecay", "InvertedDropoutExpectation", "EvalModeIdentity",
    "EarlyStoppingBestEpoch", "MoreDataShrinksGap", "WeightScalingGeometricMean",
    "DropoutNeedsOverfitting", "linear_geometric_gap", "mlp_weight_scaling_gap",
    "rank_relation", "DropConnectVsDropout",
    "L1ZerosL2Shrinks", "BatchnormSpeedsTraining", "BatchnormAllowsHigherLR",
    "BikesRegularizedBetter", "BatchnormInitSensitivity",
    "L2LargePredictsMean", "L2ConcentratesParams", "DropoutHighPPredictsMean",
    "DropoutOneLearnsNothing", "DropoutWiderThanL2",
    "PAPER_ACCURACY", "Mnist1DBaselines", "EqualBudgetChangesRanking", "ranking_change",
]
