"""The OpenML suites written into regbench: CC18's fixed list, cc18-small's rule, and the
built-in matrices made from them (sizes in `regbench list matrices`, no data read)."""

from __future__ import annotations

from regbench import matrix
from regbench.__main__ import main
from regbench.openml_data import suites


def test_cc18_is_72_distinct_tasks_on_72_distinct_datasets() -> None:
    assert len(suites.CC18) == 72
    assert len({t.task_id for t in suites.CC18}) == len({t.data_id for t in suites.CC18}) == 72
    assert all(t.rows >= 500 and t.features >= 5 and t.classes >= 2 for t in suites.CC18)
    assert suites.CC18_SUITE_ID == 99


def test_cc18_small_is_its_rule_applied_to_the_written_shapes() -> None:
    rule = [t.task_id for t in suites.CC18 if t.rows * t.features <= suites.SMALL_MAX_CELLS]
    assert list(suites.CC18_SMALL) == rule
    assert [t.task_id for t in suites.small()] == rule
    assert max(t.size for t in suites.small()) <= suites.SMALL_MAX_CELLS < min(
        t.size for t in suites.CC18 if t.task_id not in suites.CC18_SMALL)


def test_the_suite_matrices_are_built_without_reading_data() -> None:
    """Each entry names its kind, so the matrix expands (skips decided) with no cache."""
    for name, members in (("openml-cc18", suites.CC18), ("cc18-small", suites.small())):
        m = matrix.get(name)
        specs = m.task_specs()
        assert [s.get("task_id") for s in specs] == [t.task_id for t in members]
        exp = m.expand()
        per_task = len(exp.cells) // len(members)
        assert len(exp.cells) == per_task * len(members) and per_task == 100  # 20 x 5 seeds
        assert {c.task.get("kind") for c in exp.cells} == {"classification"}
        assert str(suites.CC18_SUITE_ID) in m.description and suites.CC18_TAKEN in \
            m.description


def test_list_matrices_shows_both_with_their_sizes(capsys) -> None:
    assert main(["list", "matrices"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ") and not line.startswith("      ")}
    assert "7200 cells, 5 seeds" in lines["openml-cc18"] and "all 72 tasks" in \
        lines["openml-cc18"]
    assert "5600 cells, 5 seeds" in lines["cc18-small"] and "56 tasks" in lines["cc18-small"]
