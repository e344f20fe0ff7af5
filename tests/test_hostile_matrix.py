"""Hostile matrix files: every document is accepted, or refused with exit 2 and one line that
names the field; never a traceback, never a row (or a file) in the store.

Hypothesis builds near-valid TOML documents (real names and keys mixed with unknown ones,
wrong types, huge, negative and non-finite numbers, unicode, deep nesting) so most of them
get past the first check and exercise the field checks behind it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regbench import matrix
from regbench.__main__ import main
from regbench.errors import RegbenchError
from regbench.params import Param
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.tasks.base import PROTOCOL_FIELDS


# -- a small TOML writer (inline tables and arrays only: TOML 1.0) ------------------------------
def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(x)}"
                               for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_document(doc: dict[str, Any]) -> str:
    lines = [f"{toml_value(k)} = {toml_value(v)}" for k, v in doc.items() if k != "blocks"]
    blocks = doc.get("blocks")
    if isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks):
        for block in blocks:
            lines.append("[[blocks]]")
            lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in block.items()]
    elif "blocks" in doc:
        lines.insert(0, f"blocks = {toml_value(blocks)}")
    return "\n".join(lines) + "\n"


# -- documents ------------------------------------------------------------------------------
# TOML integers are 64-bit; floats include nan and inf.
INTS = st.one_of(st.integers(-5, 70), st.integers(-(2**63), 2**63 - 1),
                 st.sampled_from([0, -1, 10**9, 10**18, 2**63 - 1]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e-3, 0.5, 1.0, 1e300, -1e300, 5e-324]))
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "é", "タスク", "💥", "a" * 300,
                                                        "\x00", "\u202e", "mlp ", "MLP"]))
SCALARS = st.one_of(INTS, FLOATS, TEXT, st.booleans())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=12)


def deep(depth: int) -> Any:
    v: Any = 1
    for i in range(depth):
        v = [v] if i % 2 else {"x": v}
    return v


DEEP = st.integers(10, 60).map(deep)
HOSTILE = st.one_of(SCALARS, VALUES, DEEP)


def _default(p: Any) -> Any:
    return p.default if isinstance(p, Param) else p


def valid_entries(registry: Any) -> st.SearchStrategy:
    """A real name, or a table of a real name and some of its parameters at their defaults
    (sometimes a sweep of two)."""

    @st.composite
    def entry(draw: st.DrawFn) -> Any:
        name = draw(st.sampled_from(registry.names()))
        params = {k: _default(v) for k, v in getattr(registry.get(name), "params", {}).items()
                  if _default(v) is not None}
        if not params or draw(st.booleans()):
            return name
        keys = draw(st.sets(st.sampled_from(sorted(params)), max_size=2))
        out: dict[str, Any] = {"name": name}
        for k in sorted(keys):
            out[k] = [params[k], params[k]] if draw(st.booleans()) else params[k]
        return out

    return st.lists(entry(), min_size=1, max_size=2)


@st.composite
def valid_blocks(draw: st.DrawFn) -> dict[str, Any]:
    block = {"tasks": draw(valid_entries(TASKS)), "archs": draw(valid_entries(ARCHS)),
             "regularizers": draw(valid_entries(REGULARIZERS))}
    if draw(st.booleans()):
        block["strengths"] = draw(st.sampled_from(matrix.STRENGTH_SETS))
    if draw(st.booleans()):
        fields = draw(st.sets(st.sampled_from(sorted(PROTOCOL_FIELDS)), max_size=2))
        block["protocol"] = {k: PROTOCOL_FIELDS[k].default for k in sorted(fields)
                             if PROTOCOL_FIELDS[k].default is not None}
    return block


def slots(v: Any, out: list) -> list:
    """Every (container, key) in `v`, where a value can be replaced or a key added."""
    if isinstance(v, dict):
        for k in list(v):
            out.append((v, k))
            slots(v[k], out)
        out.append((v, None))  # a new, unknown key
    elif isinstance(v, list):
        for i in range(len(v)):
            out.append((v, i))
            slots(v[i], out)
    return out


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with 0-3 hostile mutations anywhere in it."""
    doc: dict[str, Any] = {"name": draw(TEXT), "seeds": draw(st.integers(1, 3)),
                           "blocks": draw(st.lists(valid_blocks(), min_size=1, max_size=2))}
    for _ in range(draw(st.integers(0, 3))):
        where = slots(doc, [])
        container, key = where[draw(st.integers(0, len(where) - 1))]
        value = draw(HOSTILE)
        if key is None:
            container[draw(TEXT)] = value
        else:
            container[key] = value
    return doc


def words(v: Any) -> set[str]:
    """Every key and string value anywhere in `v`."""
    if isinstance(v, dict):
        return {str(k) for k in v} | set().union(*(words(x) for x in v.values()))
    if isinstance(v, list):
        return set().union(*(words(x) for x in v))
    return {v} if isinstance(v, str) else set()


FIELDS = (matrix.MATRIX_KEYS | matrix.BLOCK_KEYS | {"block", "strength", "entry"}
          | {r.kind for r in (TASKS, ARCHS, REGULARIZERS)})


def names_a_field(message: str, doc: dict[str, Any], source: str) -> bool:
    text = message.replace(source, "")
    return any(w and w in text for w in words(doc) | FIELDS)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=documents())
@pytest.mark.slow
def test_hostile_documents_are_accepted_or_refused_with_one_line(doc, tmp_path_factory,
                                                                  capsys):
    d = tmp_path_factory.mktemp("m")
    path, store = d / "m.toml", d / "s.sqlite"
    path.write_text(toml_document(doc), encoding="utf-8")
    try:
        m = matrix.Matrix.from_toml(path)
    except RegbenchError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert names_a_field(message, doc, str(path)), message
        # The CLI: exit 2, one line, nothing in (or created for) the store.
        capsys.readouterr()
        assert main(["run", "--matrix", str(path), "--store", str(store), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("regbench: error: ") and err.count("\n") == 1, err
        assert not store.exists()
        return
    exp = m.expand()  # accepted: it expands, within the size limit
    assert len(exp.cells) <= matrix.MAX_CELLS


# -- a few through the real CLI, in subprocesses ---------------------------------------------
BLOCK = '[[blocks]]\ntasks = ["curve"]\narchs = ["mlp"]\nregularizers = ["none"]\n'
CASES = {
    "huge-expansion": (  # 10 x 10 x 10 x 10 x 10 x 10^4 seeds = 10^9 cells, counted not built
        "seeds = 10000\n[[blocks]]\ntasks = [{name = \"curve\", noise = [0.1, 0.2, 0.3, 0.4, "
        "0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}]\narchs = [{name = \"mlp\", width = [1, 2, 3, 4, 5, "
        "6, 7, 8, 9, 10], depth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}]\nregularizers = "
        "[{name = \"l2\", strengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}]\n", "cells"),
    "deep-nesting": ('seeds = 1\n[[blocks]]\ntasks = ["curve"]\narchs = ["mlp"]\n'
                     'regularizers = ["none"]\nprotocol = {epochs = ' + "[" * 2000 + "1"
                     + "]" * 2000 + "}\n", "nests"),
    "negative-epochs": (BLOCK + "protocol = {epochs = -3}\n", "epochs"),
    "nan-strength": (BLOCK.replace('["none"]', '[{name = "l2", strengths = [nan]}]'),
                     "strength"),
    "huge-seeds": ("seeds = 9223372036854775807\n" + BLOCK, "seeds"),
    "unicode-task": (BLOCK.replace('"curve"', '"タスク💥"'), "タスク💥"),
    "unknown-key": ("colour = 1\n" + BLOCK, "colour"),
    "wrong-type": (BLOCK.replace('["mlp"]', '"mlp"'), "archs"),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_hostile_files_through_the_cli(tmp_path, name):
    text, needle = CASES[name]
    path, store = tmp_path / "m.toml", tmp_path / "s.sqlite"
    path.write_text(text, encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(path),
                           "--store", str(store)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("regbench: error: ") and needle in proc.stderr, proc.stderr
    assert not store.exists()
    assert time.perf_counter() - t0 < 60  # refused up front, not expanded


def test_the_toml_writer_round_trips():
    import tomllib

    doc = {"name": "é\x7f\"x", "seeds": 2, "blocks": [{"tasks": ["curve", {"name": "digits",
                                                                          "n": [1, 2.5]}],
                                                       "protocol": {"lr": float("inf")}}]}
    assert tomllib.loads(toml_document(doc)) == doc
