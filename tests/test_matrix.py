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
    assert regs == set(REGULARIZERS.names())


def test_default_matrix_shape():
    exp = matrix.get("default").expand()
    assert {c.task.name for c in exp.cells} == set(matrix.DEFAULT_TASKS)
    assert {c.seed for c in exp.cells} == set(range(5))
    assert "bikes" not in {c.task.name for c in exp.cells}
    backends = {c.reg.get("backend") for c in exp.cells if c.reg.name == "dropout"}
    assert backends == {None, "fused"}  # one task runs dropout with both backends


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
