"""The code examples of the README and of docs/ run, and their command lines parse.

- Every ```python block runs (sybil, MyST syntax), in page order with one namespace per page,
  in a temporary folder; a block after `% skip: next` or `<!-- skip: next -->` is shown only.
- Every `regbench ...`, `python -m regbench.report ...` and `python -m regbench.bench ...`
  line of a ```bash block is parsed by the real argument parser, so an option that was
  renamed or removed fails here.
- Every `REGBENCH_*` environment variable the package reads is in the reference.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
PAGES = [p for p in PAGES if "_build" not in p.parts and "generated" not in p.parts]


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def _has_python(page: Path) -> bool:
    return "```python" in page.read_text()


@pytest.mark.parametrize("page", [p for p in PAGES if _has_python(p)], ids=_rel)
def test_python_examples_run(page, tmp_path, monkeypatch):
    sybil = pytest.importorskip("sybil")
    from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    doc = sybil.Sybil(parsers=[PythonCodeBlockParser(), SkipParser()]).parse(page)
    ran = 0
    for example in doc:
        example.evaluate()
        ran += 1
    assert ran, f"{_rel(page)} has python blocks but none was found"


def _shell_lines(text: str) -> list[str]:
    lines: list[str] = []
    for block in re.findall(r"```(?:bash|console|sh)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if part:
                    lines.append(part)
    return lines


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from regbench.__main__ import build_parser
    from regbench.bench import add_arguments
    from regbench.report.cli import build_parser as report_parser

    bench = argparse.ArgumentParser(prog="python -m regbench.bench")
    add_arguments(bench)
    return {"regbench": build_parser(), "python -m regbench.report": report_parser(),
            "python -m regbench.bench": bench}


def _commands(pages: list[Path]) -> list[tuple[str, str]]:
    out = []
    for page in pages:
        for line in _shell_lines(page.read_text()):
            for prefix in ("python -m regbench.report", "python -m regbench.bench", "regbench"):
                if line == prefix or line.startswith(prefix + " "):
                    out.append((_rel(page), line))
                    break
    return out


COMMANDS = _commands(PAGES)


def test_the_pages_show_commands():
    assert len(COMMANDS) > 30 and {p for p, _ in COMMANDS} >= {"README.md"}


@pytest.mark.parametrize("page, line", COMMANDS, ids=[f"{p}:{c}" for p, c in COMMANDS])
def test_shell_examples_parse(page, line, capsys):
    parsers = _parsers()
    prefix = next(p for p in ("python -m regbench.report", "python -m regbench.bench",
                              "regbench") if line == p or line.startswith(p + " "))
    argv = shlex.split(line[len(prefix):])
    for i, tok in enumerate(argv):  # a shell redirection or pipe ends the command
        if tok in (">", ">>", "|", "2>", "&>"):
            argv = argv[:i]
            break
    try:
        parsers[prefix].parse_args(argv)
    except SystemExit as exc:
        if exc.code != 0:  # --help / --version exit 0
            pytest.fail(f"{page}: `{line}` does not parse: {capsys.readouterr().err.strip()}")


def test_a_renamed_option_is_caught():
    # the check itself: an option that does not exist fails to parse
    with pytest.raises(SystemExit):
        _parsers()["regbench"].parse_args(["run", "--matrx", "smoke"])


def test_every_environment_variable_is_documented():
    used = set()
    for path in [*(ROOT / "regbench").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]:
        used |= set(re.findall(r"\bREGBENCH_[A-Z0-9_]+\b", path.read_text()))
    documented = (ROOT / "docs" / "reference" / "environment.md").read_text()
    missing = sorted(v for v in used if f"`{v}`" not in documented)
    assert not missing, f"docs/reference/environment.md does not describe {missing}"


def test_ci_builds_the_docs_with_the_readmes_commands():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"Build and serve it locally:\n\n```bash\n(.*?)```", readme, re.S)
    assert m, "README has no 'Build and serve it locally' block"
    install, build = m.group(1).splitlines()[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and build in ci, ".ci/run does not build the docs as the README says"
    site_test = ci.index("python -m pytest tests/test_docs_site.py")
    assert ci.index(install) < ci.index(build) < site_test
