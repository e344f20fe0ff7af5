"""Up-front validation: every protocol field, architecture, task and regularizer parameter is
checked for type and range when the matrix is built; a bad value exits 2 naming the field,
the value and what is allowed, and nothing is written to the store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from regbench.errors import RegbenchError
from regbench.matrix import MAX_CELLS, Matrix


def block(**over):
    b = {"tasks": ["curve"], "archs": ["mlp"], "regularizers": ["none"]}
    b.update(over)
    return {"blocks": [b]}


BAD = [  # (document, words the one-line message must contain)
    (block(protocol={"epochs": 0}), ["epochs=0", ">= 1"]),
    (block(protocol={"epochs": 2.5}), ["epochs=2.5", "integer"]),
    (block(protocol={"epochs": True}), ["epochs=True"]),
    (block(protocol={"lr": -1}), ["lr=-1", "> 0"]),
    (block(protocol={"lr": 0}), ["lr=0", "> 0"]),
    (block(protocol={"batch_size": -1}), ["batch_size=-1", ">= 0"]),
    (block(protocol={"momentum": 1.0}), ["momentum=1.0", "< 1"]),
    (block(protocol={"momentum": -0.1}), ["momentum=-0.1", ">= 0"]),
    (block(protocol={"optimizer": "lbfgs"}), ["lbfgs", "adam", "sgd"]),
    (block(protocol={"lr_schedule": "linear"}), ["linear", "cosine", "step"]),
    (block(protocol={"loss_reduction": "max"}), ["loss_reduction='max'", "'sum'"]),
    (block(protocol={"standardize": "y"}), ["standardize='y'", "'none'"]),
    (block(protocol={"init": "xavier"}), ["init='xavier'", "'torch'"]),
    (block(protocol={"lr_gamma": 0}), ["lr_gamma=0"]),
    (block(protocol={"epochs": "10"}), ["epochs='10'", "integer"]),
    (block(protocol={"epoch": 10}), ["epoch", "valid choices"]),
    (block(protocol=[1, 2]), ["protocol must be a table"]),
    (block(archs=[{"name": "mlp", "width": 0}]), ["width=0", ">= 1"]),
    (block(archs=[{"name": "mlp", "depth": -2}]), ["depth=-2"]),
    (block(archs=[{"name": "mlp", "width": 10**30}]), ["width="]),
    (block(archs=[{"name": "mlp", "width": [8, 0]}]), ["width=0"]),
    (block(archs=[{"name": "mlp", "activation": "gelu"}]), ["activation='gelu'", "'relu'"]),
    (block(archs=[{"name": "mlp", "widht": 8}]), ["widht", "valid choices"]),
    (block(tasks=[{"name": "curve", "noise": -0.1}]), ["noise=-0.1", ">= 0"]),
    (block(tasks=[{"name": "digits", "label_noise": 1.5}]), ["label_noise=1.5", "<= 1"]),
    (block(tasks=[{"name": "digits", "n_train": 0}]), ["n_train=0"]),
    (block(tasks=[{"name": "periodic", "n": "many"}]), ["n='many'"]),
    (block(tasks="curve"), ["tasks must be a non-empty list"]),
    (block(tasks=[]), ["tasks must be a non-empty list"]),
    (block(tasks=[{"noise": 1}]), ["task entry must be a name or a table with 'name'"]),
    (block(regularizers=[{"name": "dropout", "strengths": [1.5]}]), ["p=1.5"]),
    (block(regularizers=[{"name": "l2", "strengths": ["big"]}]), ["strengths", "big"]),
    (block(regularizers=[{"name": "l2", "strengths": [float("inf")]}]), ["strengths", "inf"]),
    (block(regularizers=[{"name": "dropout", "backend": "cuda"}]), ["backend='cuda'"]),
    (block(regularizers=[{"name": "augment", "kind": "mixup"}]), ["kind='mixup'", "'shift'"]),
    ({**block(), "seeds": 0}, ["seeds", "got 0"]),
    ({**block(), "seeds": 10**12}, ["seeds"]),
    ({"blocks": []}, ["no [[blocks]]"]),
    ({"blocks": [1]}, ["must be a table"]),
]


@pytest.mark.parametrize("doc,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_values_are_refused_when_the_matrix_is_built(doc, words):
    with pytest.raises(RegbenchError) as err:
        Matrix.from_dict(doc)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message, (w, message)


def test_an_enormous_matrix_is_refused_with_its_size_before_expanding():
    doc = block(tasks=[{"name": "periodic", "n": list(range(100, 1100))}],
                archs=[{"name": "mlp", "width": list(range(1, 101))}],
                regularizers=[{"name": "l2", "strengths": [1e-3] * 10}])
    doc["seeds"] = 10  # 1000 x 100 x 10 x 10 = 10^7 cells
    with pytest.raises(RegbenchError, match=r"10,000,000 cells; at most 1,000,000"):
        Matrix.from_dict(doc)
    ok = Matrix.from_dict(block())
    with pytest.raises(RegbenchError, match="--seeds must be in"):
        ok.expand(seeds=10**9)
    assert MAX_CELLS == 1_000_000


def test_good_values_still_build():
    m = Matrix.from_dict(block(protocol={"epochs": 3, "lr": 1, "momentum": 0.9,
                                         "optimizer": "sgd", "loss_reduction": "sum",
                                         "standardize": "none", "init": "torch",
                                         "lr_schedule": "step", "lr_step_size": 2,
                                         "lr_gamma": 0.5, "batch_size": 0}))
    assert len(m.expand().cells) == 1


TOML_BAD = {
    "epochs0": ('protocol = {epochs = 0}', "epochs=0"),
    "lr": ('protocol = {lr = -1.0}', "lr=-1.0"),
    "optimizer": ('protocol = {optimizer = "lbfgs"}', "lbfgs"),
    "width": ('archs = [{name = "mlp", width = 0}]', "width=0"),
    "noise": ('tasks = [{name = "curve", noise = -1.0}]', "noise=-1.0"),
}


@pytest.mark.parametrize("key", sorted(TOML_BAD))
@pytest.mark.slow
def test_cli_exits_2_naming_the_field_and_writes_nothing(key, tmp_path):
    line, needle = TOML_BAD[key]
    fields = {"tasks": 'tasks = ["curve"]', "archs": 'archs = ["mlp"]',
              "regularizers": 'regularizers = ["none"]'}
    name = line.split(" ", 1)[0]
    fields[name] = line
    body = "\n".join(v for k, v in fields.items() if k != "protocol")
    if name == "protocol":
        body += "\n" + line
    toml = tmp_path / "m.toml"
    toml.write_text("[[blocks]]\n" + body + "\n")
    store = tmp_path / "s.sqlite"
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(toml),
                           "--store", str(store), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not store.exists()
