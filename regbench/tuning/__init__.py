"""Equal-budget tuning: every entry of a `tune` block searched with the same number of
trials over its declared space, the learning rate included (Optuna's samplers), selected on
validation and tested on fresh seeds.

Layout: `space` (the distributions a knob declares), `config` (a block's tune table),
`samplers` (Optuna's random, qmc, tpe), `study` (one entry on one setting: trials and finals,
replayed from the store), `build` (a tuned block made into studies, every value checked),
`driver` (rounds of `run_cells` until every study is done), `evp` (what the budget bought:
expected validation performance and tunability, for the report).
"""

from regbench.tuning.space import Choice, IntUniform, LogUniform, Uniform

__all__ = ["Choice", "IntUniform", "LogUniform", "Uniform"]
