import pytest

from regbench import matrix
from regbench.errors import MatrixError, RegbenchError, UnknownNameError


@pytest.mark.parametrize("name", matrix.names())
def test_builtin_matrices_expand(name):
    exp = matrix.get(name).expand()
    assert exp.cells
    assert len({c.cell_id for c in exp.cells}) == len(exp.cells)


def test_smoke_covers_every_regularizer():
    from regbench.registry import REGULARIZERS

    regs = {c.reg.name for c in matrix.get("smoke").expand().cells}
    assert regs == set(REGULARIZERS.builtin_names())


def test_default_matrix_shape():
    from regbench.registry import REGULARIZERS

    exp = matrix.get("default").expand()
    assert {c.task.name for c in exp.cells} == set(matrix.DEFAULT_TASKS) | {"mnist1d"}
    assert {c.arch.name for c in exp.cells if c.task.name == "mnist1d"} == {
        "linear", "mlp_residual", "cnn1d"}
    assert {c.seed for c in exp.cells} == set(range(5))
    assert "bikes" not in {c.task.name for c in exp.cells}
    backends = {c.reg.get("backend") for c in exp.cells if c.reg.name == "dropout"}
    assert backends == {None, "fused"}  # one task runs dropout with both backends
    # the field's regularizers are in it once each, on digits (its 5-minute budget)
    field = set(matrix.STEP_REGULARIZERS + matrix.FIELD_REGULARIZERS + ["shake_drop"])
    cells = [c for c in exp.cells if c.reg.name in field]
    assert {c.reg.name for c in cells} == field
    assert {c.task.name for c in cells} == {"digits"}
    assert {(c.reg.name, c.reg.strength) for c in cells} == {
        (n, REGULARIZERS.get(n).default_strengths[0]) for n in field}


def test_skips_say_why():
    skips = matrix.get("default").expand().skipped
    reasons = {(s.task, s.regularizer): s.reason for s in skips}
    assert "classification" in reasons[("diabetes", "label_smoothing")]
    assert "residual" in reasons[("digits", "stochastic_depth")]


def test_filters_and_seed_override():
    exp = matrix.get("default").expand(seeds=2, tasks=["digits"], regularizers=["none", "l2"])
    assert {c.task.name for c in exp.cells} == {"digits"}
    assert {c.reg.name for c in exp.cells} == {"none", "l2"}
    assert {c.seed for c in exp.cells} == {0, 1}
    with pytest.raises(UnknownNameError, match="digitz"):
        matrix.get("default").expand(tasks=["digitz"])


def test_unknown_matrix_lists_choices():
    with pytest.raises(UnknownNameError, match="smoke"):
        matrix.get("nope")


def test_toml_matrix(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text("""
seeds = 2
[[blocks]]
tasks = ["curve", {name = "digits", label_noise = 0.2}]
archs = [{name = "mlp", width = [8, 16]}]
regularizers = ["none", {name = "l2", strengths = [1e-3, 1e-2]},
                {name = "dropout", backend = "native"}]
protocol = {epochs = 2}
""")
    m = matrix.get(str(p))
    assert m.name == "mine"
    cells = m.expand().cells
    # 2 tasks x 2 widths x (1 + 2 + 2 default dropout strengths) x 2 seeds
    assert len(cells) == 2 * 2 * 5 * 2
    assert {c.arch.get("width") for c in cells} == {8, 16}
    assert all(dict(c.protocol) == {"epochs": 2} for c in cells)


@pytest.mark.parametrize("text, match", [
    ("seeds = 1\n[[blocks]]\ntasks=['curve']\narchs=['mlp']\nregularizers=['none']\ncolour=1",
     "unknown key.*colour.*valid choices"),
    ("seeds = 1\n[[blocks]]\ntasks=['curve']\narchs=['mlpp']\nregularizers=['none']", "mlpp"),
    ("seeds = 1\n[[blocks]]\ntasks=['curve']\narchs=['mlp']\n"
     "regularizers=[{name='l2', strengths=[-1]}]",
     "-1"),
    ("seeds = 1\n[[blocks]]\ntasks=['curve']\narchs=[{name='mlp', widht=3}]\nregularizers=['none']",
     "widht"),
    ("seeds = 1\n[[blocks]]\ntasks=['curve']\narchs=['mlp']\nregularizers=['none']\n"
     "protocol={epoch=3}", "epoch"),
    ("seeds = 0\n[[blocks]]\ntasks=['curve']\narchs=['mlp']\nregularizers=['none']", "seeds"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_toml_is_a_clear_error(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(RegbenchError, match=match):
        matrix.get(str(p))


def test_missing_toml_file():
    with pytest.raises(MatrixError, match="does not exist"):
        matrix.get("no/such/file.toml")


def test_mnist1d_matrices_follow_their_recipes():
    paper = matrix.get("mnist1d-paper").expand().cells
    assert {c.arch.name for c in paper} == {"linear", "mlp_residual", "cnn1d"}
    for c in paper:  # 8000 steps of batch 100 on all 4000 train samples, Adam 1e-2
        assert dict(c.task.params)["val_fraction"] == 0.0
        p = dict(c.protocol)
        assert (p["epochs"], p["batch_size"], p["optimizer"], p["lr"]) == (200, 100, "adam", 1e-2)
    dd = matrix.get("double-descent").expand().cells
    widths = sorted({dict(c.arch.params)["width"] for c in dd})
    assert widths[0] == 2 and widths[-1] == 300 and len(widths) >= 10
    assert {c.reg.name for c in dd} == {"none", "weight_decay", "dropout"}
    for c in dd:
        assert dict(c.arch.params)["depth"] == 2 and dict(c.arch.params)["activation"] == "relu"
        t = dict(c.task.params)
        assert (t["num_samples"] * t["train_split"], t["label_noise"]) == (4000, 0.15)
        p = dict(c.protocol)
        assert (p["optimizer"], p["lr"], p["momentum"], p["epochs"]) == ("sgd", 0.01, 0.9, 500)
    bn = matrix.get("batchnorm-lr").expand().cells
    lrs = {dict(c.protocol)["lr"] for c in bn}
    assert len(lrs) >= 5 and {c.reg.name for c in bn} == {"none", "batchnorm"}
    assert all(dict(c.protocol)["optimizer"] == "sgd" for c in bn)
    mn = matrix.get("max-norm-lr").expand().cells
    assert len(mn) == 5 * 4 * 5  # lrs x (none, dropout, dropout + max_norm c=3, c=1) x seeds
    assert {(c.reg.name, tuple(s.stack_label() for s in c.addons)) for c in mn} == {
        ("none", ()), ("dropout", ()), ("dropout", ("max_norm=3",)), ("dropout", ("max_norm=1",))}
    assert {(dict(c.protocol)["optimizer"], dict(c.protocol)["momentum"]) for c in mn} == {
        ("sgd", 0.95)}


def test_the_builtin_matrices_are_the_shipped_toml_files():
    import tomllib

    from regbench.matrix.builtin import _folder

    files = sorted(p.stem for p in _folder().glob("*.toml"))
    assert sorted(matrix.names()) == files and len(files) == 13
    for name in files:
        doc = tomllib.loads(matrix.text(name))
        assert set(doc) <= matrix.MATRIX_KEYS and doc["blocks"], name


def test_the_names_code_uses_agree_with_the_toml_files():
    """The Python lists that tests and claims use say what the shipped files hold."""
    import tomllib

    def regs(entries):
        return [e if isinstance(e, str) else e["name"] for e in entries]

    smoke = tomllib.loads(matrix.text("smoke"))["blocks"][0]["regularizers"]
    assert regs(smoke) == [r for r in matrix.ALL_REGULARIZERS + matrix.STEP_REGULARIZERS
                           + matrix.FIELD_REGULARIZERS + matrix.OUTPUT_REGULARIZERS
                           if r != "stochastic_depth"]
    default = tomllib.loads(matrix.text("default"))["blocks"][0]
    assert default["tasks"] == matrix.DEFAULT_TASKS
    assert default["regularizers"] == matrix.ALL_REGULARIZERS
    lrs = [b["protocol"]["lr"] for b in tomllib.loads(matrix.text("batchnorm-lr"))["blocks"]]
    assert tuple(lrs) == matrix.BATCHNORM_LRS


def test_the_cc18_files_list_the_suites_tasks():
    import tomllib

    from regbench.openml_data import suites

    for name, tasks in (("openml-cc18", suites.CC18), ("cc18-small", suites.small())):
        doc = tomllib.loads(matrix.text(name))
        assert doc["blocks"][0]["tasks"] == [t.entry() for t in tasks]
        assert f"OpenML suite {suites.CC18_SUITE_ID}" in doc["description"]


def test_list_toml_prints_a_matrix_a_user_can_run_as_a_file(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "regbench", "list", "matrices", "--toml",
                        "cocktails"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "mine.toml"
    path.write_text(r.stdout)
    mine, builtin = matrix.get(str(path)).expand(), matrix.get("cocktails").expand()
    assert [c.cell_id for c in mine.cells] == [c.cell_id for c in builtin.cells]
    r = subprocess.run([sys.executable, "-m", "regbench", "list", "--toml", "nosuch"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "unknown built-in matrix 'nosuch'" in r.stderr and "cocktails" in r.stderr
