"""Record metrics and curves of a sample of built-in cells: tests/test_builtins_bitwise.py
compares every later version of the training loop with the file this wrote (run at commit
cba0802, before the training-step hooks).

Usage: python tools/record_builtin_cells.py OUT.json
"""
import json
import sys

from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

E = freeze({"epochs": 4})
D = TaskSpec("digits", freeze({"n_train": 200}))
CASES = [
    (TaskSpec("curve"), ArchSpec("mlp", freeze({"width": 16, "depth": 2})), "none", 0.0, {}),
    (TaskSpec("curve"), ArchSpec("mlp", freeze({"width": 16, "depth": 2})), "l1", 1e-3, {}),
    (TaskSpec("curve"), ArchSpec("mlp", freeze({"width": 16, "depth": 2})), "dropout", 0.1, {}),
    (TaskSpec("periodic"), ArchSpec("mlp"), "l2", 1e-2, {}),
    (TaskSpec("periodic"), ArchSpec("mlp"), "l2", 1e-2, {"backend": "fused"}),
    (TaskSpec("periodic"), ArchSpec("mlp"), "dropout", 0.1, {"backend": "fused"}),
    (TaskSpec("periodic"), ArchSpec("resmlp"), "stochastic_depth", 0.3, {}),
    (D, ArchSpec("mlp"), "weight_decay", 1e-2, {}),
    (D, ArchSpec("mlp"), "adamw", 1e-2, {}),
    (D, ArchSpec("mlp"), "adamw", 1e-2, {"backend": "fused"}),
    (D, ArchSpec("mlp"), "batchnorm", 1.0, {}),
    (D, ArchSpec("mlp"), "early_stopping", 1.0, {}),
    (D, ArchSpec("mlp"), "augment", 0.1, {}),
    (D, ArchSpec("cnn"), "augment", 0.1, {"kind": "crop_flip"}),
    (D, ArchSpec("mlp"), "label_smoothing", 0.1, {}),
    (D, ArchSpec("mlp"), "more_data", 0.5, {}),
    (TaskSpec("diabetes"), ArchSpec("mlp"), "l1", 1e-3, {"backend": "fused"}),
    (TaskSpec("breast_cancer"), ArchSpec("mlp"), "dropout", 0.5, {}),
    (TaskSpec("mnist1d", freeze({"num_samples": 600})), ArchSpec("cnn1d"), "dropout", 0.1, {}),
]
KEYS = ["status", "epochs", "best_epoch", "train_loss", "val_loss", "test_loss", "train_metric",
        "val_metric", "test_metric"]
out = []
for t, a, r, s, p in CASES:
    cell = Cell(t, a, RegSpec(r, s, freeze(p)), 1, E)
    res = run_cell(cell)
    assert res.status == "ok", (cell.describe(), res.error)
    out.append({"cell": cell.to_json(), "cell_id": cell.cell_id,
                "metrics": {k: (res.status if k == "status" else res.metrics.get(k)) for k in KEYS},
                "curves": res.curves})
json.dump(out, open(sys.argv[1], "w"), indent=1)
print(len(out))
