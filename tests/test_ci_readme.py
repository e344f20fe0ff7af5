"""`.ci/run` runs exactly the README's setup and test commands (so a newcomer runs what CI runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_test_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"Setup and the tests:\n\n```bash\n(.*?)```", text, re.S)
    assert m, "README has no 'Setup and the tests' block"
    return [line for line in m.group(1).splitlines() if line.strip()]


def ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    skip = ("#", "set -euo pipefail", 'cd "$(dirname "$0")/.."')
    return [line for line in lines if line.strip() and not line.startswith(skip)]


def test_ci_runs_the_readme_setup_then_lint_then_the_tests():
    setup, test = readme_test_commands()
    assert "pip install -e '.[test]'" in setup and test == "python -m pytest"
    ci = ci_commands()
    assert setup in ci, ".ci/run does not run the README's setup line"
    at = ci.index(setup)
    assert ci[at:at + 3] == [setup, "ruff check .", test]


def test_ci_also_runs_the_slow_tests_the_default_run_leaves_out():
    """`python -m pytest` deselects the tests marked slow (pyproject addopts); .ci/run runs
    them in a second step, the one the README's Development section gives."""
    import tomllib

    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["addopts"]
    marks = re.search(r"""-m ["']([^"']*)["']""", addopts)
    assert marks and "not slow" in marks.group(1)
    ci = ci_commands()
    at = ci.index("python -m pytest")
    assert ci[at + 1] == "python -m pytest -m slow"
    dev = re.search(r"## Development\n\n```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert dev and any(line.startswith("python -m pytest -m slow ")
                       for line in dev.group(1).splitlines())
