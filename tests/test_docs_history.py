"""User-facing text speaks of the software, not of how it was made.

The README, the documentation, the committed example report, and the package's
docstrings and strings (which become the API reference, the CLI's help and its output)
carry no issue numbers and no words about sessions, rounds or who did what.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Forms that only internal history uses. Ordinary words stay allowed: "a GitHub issue"
# in a bug-report instruction, "round to nearest even", "helpers" for helper functions.
COMMON = [
    r"\b[Ii]ssue[- ]?#?\d+",            # issue 16, Issue-16, issue #16
    r"\bthe issue'?s\b",                # "the setting"
    r"(?<![\w&/#'\"])#\d{1,4}\b(?![\w-])",  # #16 as a reference (not a colour or anchor)
    r"\b[Ss]essions?\b",
    r"\b(this|that|the previous|the last|the next|a later|an earlier) round\b",
    r"\b[Tt]he lead\b",
    r"\bthis branch\b",
]
PROSE_ONLY = [
    r"\b[Hh]elpers?\b",                 # people; in code, helper functions are fine
    r"\bagents?\b",
    r"\bwas available (this|to the)\b",
]


def _prose_files() -> list[Path]:
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    files = [f for f in files if "_build" not in f.parts and "generated" not in f.parts]
    reports = ROOT / "reports"
    files += [p for p in reports.rglob("*") if p.suffix in (".md", ".tex", ".csv")]
    return sorted(files)


def _code_strings(path: Path) -> str:
    """Every string constant of a module: docstrings, help texts, messages, output."""
    tree = ast.parse(path.read_text())
    parts = [node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return "\n".join(parts)


def _hits(text: str, patterns: list[str]) -> list[str]:
    out = []
    for pat in patterns:
        for m in re.finditer(pat, text):
            line = text[:m.start()].count("\n") + 1
            out.append(f"line {line}: {m.group(0)!r}")
    return out


@pytest.mark.parametrize("path", _prose_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_has_no_internal_history(path):
    hits = _hits(path.read_text(), COMMON + PROSE_ONLY)
    assert not hits, f"{path.relative_to(ROOT)}: {hits}"


def test_package_strings_have_no_internal_history():
    bad = []
    for path in sorted((ROOT / "regbench").rglob("*.py")):
        bad += [f"{path.relative_to(ROOT)} {h}" for h in _hits(_code_strings(path), COMMON)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("text, flagged", [
    ("Issue 16 targets, measured", True),
    ("the issue-16 target", True),
    ("fixed in #42", True),
    ("No GPU was available this session", True),
    ("measured this round", True),
    ("run by a helper", True),
    ("open a GitHub issue with the output of `regbench doctor`", False),
    ("round-to-even halfway cases", False),
    ("six alternating rounds in one process", False),
    ("[the store](#result-columns) and colour #fff", False),
])
def test_the_patterns_flag_history_and_spare_ordinary_words(text, flagged):
    assert bool(_hits(text, COMMON + PROSE_ONLY)) is flagged
