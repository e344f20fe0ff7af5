"""Sphinx extension: the reference pages that are generated from the code.

- ``reference/cli.md`` from the argparse parsers of ``regbench`` and
  ``python -m regbench.report`` (every subcommand, every option, its default and help);
- ``reference/registries.md`` from the task, architecture and regularizer registries, their
  declared parameters (``regbench.params.Param``: default, allowed values, doc), the
  protocol fields and the built-in matrices;
- ``reference/generated/hooks.md`` (included by ``reference/step-api.md``): the table of the
  training-step hooks from their declarations (``regbench.interface.HOOK_SPECS``: stage,
  how a stack combines each) and the built-in regularizers that override each.

The pages are written into ``docs/reference/generated/`` when the builder starts, so a
new command, option, registry entry or parameter appears in the site without an edit. A
registry entry without a docstring stops the build: its first line is the entry's
description in ``regbench list`` and here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

OUT = "reference/generated"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    s = str(text)
    return f"``{s}``" if "`" in s else f"`{s}`"


# -- CLI ---------------------------------------------------------------------------------------
def _actions_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| option | default | what |", "|---|---|---|"]
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if a.option_strings:
            flag = ", ".join(a.option_strings)
            if a.nargs != 0:
                flag += f" {a.metavar or a.dest.upper()}"
        else:
            flag = a.metavar or a.dest
        if a.choices and not isinstance(a, argparse._SubParsersAction):
            flag += " {" + ",".join(map(str, a.choices)) + "}"
        default = "" if a.default in (None, False, argparse.SUPPRESS) or a.nargs == 0 \
            else _code(a.default)
        what = a.help or ""
        if isinstance(a, argparse._VersionAction):
            what = "print the version and exit"
        rows.append(f"| {_code(flag)} | {default} | {_md_escape(what)} |")
    return rows


def _usage(parser: argparse.ArgumentParser) -> str:
    return parser.format_usage().replace("usage: ", "", 1).strip()


def _parser_section(parser: argparse.ArgumentParser, title: str, anchor: str,
                    help_text: str = "") -> list[str]:
    lines = [f"({anchor})=", f"## {title}", ""]
    text = help_text or parser.description or ""
    if text:
        lines += [text.strip().split("\n\n")[0].replace("\n", " "), ""]
    lines += ["```text", _usage(parser), "```", ""]
    table = _actions_table(parser)
    if len(table) > 2:
        lines += table + [""]
    return lines


def cli_page() -> str:
    from regbench.__main__ import build_parser
    from regbench.report.cli import build_parser as report_parser

    parser = build_parser()
    lines = ["# Command line", "",
             "Generated from the argparse parsers at build time: what is here is what the "
             "commands accept. `regbench COMMAND --help` prints the same.", "",
             "| command | what |", "|---|---|"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    lines.append("| [`python -m regbench.report`](cli-report) | the main job: run the missing "
                 "cells, then write the report |")
    for name in sub.choices:
        lines.append(f"| [`regbench {name}`](cli-{name}) | {_md_escape(helps.get(name, ''))} |")
    lines += ["", "(cli-regbench)=", "## regbench", "", "```text", _usage(parser), "```", ""]
    lines += _actions_table(parser) + [""]
    lines += _parser_section(report_parser(), "python -m regbench.report", "cli-report")
    for name, p in sub.choices.items():
        lines += _parser_section(p, f"regbench {name}", f"cli-{name}", helps.get(name, ""))
    return "\n".join(lines)


# -- registries --------------------------------------------------------------------------------
def _doc(kind: str, name: str, entry: Any) -> str:
    doc = (entry.__doc__ or "").strip()
    if not doc:
        raise ExtensionError(
            f"{kind} {name!r} ({entry.__module__}.{entry.__qualname__}) has no docstring; "
            "its first line is its description in `regbench list` and in the reference")
    return doc


def _params_table(params: dict[str, Any]) -> list[str]:
    from regbench.params import as_param

    if not params:
        return ["No parameters.", ""]
    rows = ["| parameter | default | allowed | what |", "|---|---|---|---|"]
    for key, spec in params.items():
        p = as_param(spec)
        try:
            allowed = p.allowed()
        except TypeError:
            allowed = ""
        default = "unset" if p.default is None else _code(repr(p.default))
        rows.append(f"| `{key}` | {default} | {_md_escape(allowed)} | {_md_escape(p.doc)} |")
    return rows + [""]


def _entry_section(kind: str, name: str, entry: Any, facts: list[str]) -> list[str]:
    doc = _doc(kind, name, entry)
    first, _, rest = doc.partition("\n")
    lines = [f"({kind}-{name})=", f"### `{name}`", "", first.strip(), ""]
    if rest.strip():
        import inspect

        lines += [inspect.cleandoc(rest), ""]
    lines += [f"- {f}" for f in facts] + [""]
    lines += _params_table(dict(getattr(entry, "params", {}) or {}))
    return lines


def _search_space(reg: Any) -> str:
    """The regularizer's search space in a tuned block, in words, or why it has none."""
    try:
        space = reg.search_space()
    except Exception as exc:  # a plugin entry without a space: the reason, not a failed build
        return f"search space (tuned blocks): none; {_md_escape(str(exc))}"
    parts = [f"`{reg.strength_name if key == 'strength' else key}` {s.describe()}"
             for key, s in space.items()]
    return ("search space (tuned blocks): the learning rate, "
            + ("and " + "; ".join(parts) if parts else "nothing else"))


def registries_page() -> str:
    from regbench import matrix
    from regbench.interface import PROTOCOL_FIELDS
    from regbench.registry import ARCHS, REGULARIZERS, TASKS

    lines = ["# Tasks, architectures, regularizers", "",
             "Generated from the registries and the declared parameters "
             "(`regbench/params.py`) at build time, so every entry, including one registered "
             "by a plugin that is imported when the site is built, is listed with its "
             "parameters and their allowed values. In a matrix file a parameter is set as "
             "`{name = \"mlp\", width = 128}`; a list sweeps it.", "",
             "(ref-tasks)=", "## Tasks", ""]
    for n in TASKS.names():
        t = TASKS.get(n)
        facts = [f"kind: {t.kind}, metric: `{t.metric}`",
                 "inputs: " + ", ".join(sorted(t.inputs))]
        lines += _entry_section("task", n, t, facts)
    lines += ["(ref-archs)=", "## Architectures", ""]
    for n in ARCHS.names():
        a = ARCHS.get(n)
        caps = sorted(getattr(a, "capabilities", ()) or ())
        facts = ["accepts inputs: " + ", ".join(sorted(a.inputs))]
        if caps:
            facts.append("capabilities: " + ", ".join(caps))
        lines += _entry_section("arch", n, a, facts)
    lines += ["(ref-regularizers)=", "## Regularizers", ""]
    for n in REGULARIZERS.names():
        r = REGULARIZERS.get(n)
        lo, hi = r.strength_range
        facts = [f"strength: `{r.strength_name}` in [{lo:g}, {hi:g}]"]
        if r.default_strengths:
            facts.append("default strengths: " + ", ".join(f"{s:g}" for s in r.default_strengths))
        if r.full_strengths:
            facts.append("`full` sweep: " + ", ".join(f"{s:g}" for s in r.full_strengths))
        if r.needs_kind:
            facts.append(f"needs a {r.needs_kind} task")
        if r.needs_capability:
            facts.append(f"needs an architecture with capability `{r.needs_capability}`")
        owner = getattr(r, "ownership", None)
        owns = sorted(owner() if owner else getattr(r, "owns", ()) or ())
        if owns:
            facts.append("owns (at most one per stack): " + ", ".join(owns))
        facts.append(_search_space(r))
        lines += _entry_section("reg", n, r, facts)
    lines += ["(ref-protocol)=", "## Protocol fields", "",
              "Set per matrix block with `protocol = {...}`; every field is part of the cell "
              "and its id. Defaults here are the fallback; each task sets its own protocol.",
              ""]
    lines += _params_table(PROTOCOL_FIELDS)
    lines += ["(ref-matrices)=", "## Built-in matrices", "",
              "| matrix | cells | seeds | what |", "|---|---|---|---|"]
    for n in matrix.names():
        m = matrix.get(n)
        exp = m.expand()
        cells = (f"{exp.size()} (up to; {len(exp.studies)} tuning studies)" if exp.studies
                 else str(exp.size()))
        lines.append(f"| `{n}` | {cells} | {m.seeds} | {_md_escape(m.description)} |")
    lines += ["", "`regbench list matrices` prints the same counts and the combinations each "
              "matrix skips, with the reason."]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app: Sphinx) -> None:
    out = Path(app.srcdir) / OUT
    _write(out / "cli.md", cli_page())
    _write(out / "registries.md", registries_page())
    _write(out / "store-schema.md", store_schema_page(Path(app.srcdir)))
    _write(out / "hooks.md", hooks_page(Path(app.srcdir)))


# -- training-step hooks -----------------------------------------------------------------------
def hooks_page(srcdir: Path) -> str:
    """The hook table of reference/step-api.md, from the hooks' own declarations; a hook
    without a docstring, or a page that does not include the table, stops the build."""
    import inspect

    from regbench.interface import COMBINE, HOOK_SPECS, Regularizer
    from regbench.registry import REGULARIZERS

    if "{include} generated/hooks.md" not in (srcdir / "reference" / "step-api.md").read_text():
        raise ExtensionError("reference/step-api.md does not include generated/hooks.md")
    builtins = [(n, REGULARIZERS.get(n)) for n in REGULARIZERS.builtin_names()]
    rows = ["| stage | hook | how a stack combines it | what it is for | built-ins that "
            "override it |", "|---|---|---|---|---|"]
    stage = None
    for hook, spec in HOOK_SPECS.items():
        fn = getattr(Regularizer, hook)
        doc = inspect.getdoc(fn)
        if not doc:
            raise ExtensionError(f"hook {hook} has no docstring")
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        rule = spec.combine + (f" (part: {spec.part})" if spec.part else "") + (
            f" (by {spec.called_by})" if spec.called_by else "")
        users = [n for n, cls in builtins if getattr(cls, hook) is not fn]
        first = doc.split(". ")[0].split("\n\n")[0].replace("\n", " ").rstrip(".")
        rows.append(f"| {'' if spec.stage == stage else spec.stage} | "
                    f"`{hook}({', '.join(params)})` | {rule} | {_md_escape(first)} | "
                    f"{', '.join(users) or '-'} |")
        stage = spec.stage
    rows += ["", "What each combination means:", ""]
    rows += [f"- `{k}`: {v}." for k, v in COMBINE.items()]
    return "\n".join(rows) + "\n"


# -- store schema ------------------------------------------------------------------------------
def store_schema_page(srcdir: Path) -> str:
    """The store's tables and columns from schema.py; every public column must be described
    in reference/store.md's result-columns table."""
    from regbench.store.schema import (
        BENCH_COLUMNS,
        CELL_COLUMNS,
        CONFLICT_COLUMNS,
        DDL,
        LEASE_COLUMNS,
        PUBLIC_COLUMNS,
        SCHEMA_VERSION,
    )

    described = (srcdir / "reference" / "store.md").read_text()
    missing = [c for c in PUBLIC_COLUMNS if f"`{c}`" not in described]
    if missing:
        raise ExtensionError(f"reference/store.md does not describe the public column(s) "
                             f"{missing} of `regbench show`")
    lines = [f"Schema version {SCHEMA_VERSION}.", ""]
    for table, cols in (("cells", CELL_COLUMNS), ("bench", BENCH_COLUMNS),
                        ("leases", LEASE_COLUMNS), ("conflicts", CONFLICT_COLUMNS)):
        lines += [f"`{table}`:", "", "| column | SQL type |", "|---|---|"]
        lines += [f"| `{k}` | {_md_escape(v)} |" for k, v in cols.items()] + [""]
    lines += ["Every statement that creates a fresh store:", "", "```sql"]
    lines += [s + ";" for s in DDL] + ["```", ""]
    return "\n".join(lines)


def markdown_tables_as_literal(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                               lines: list[str]) -> None:
    """Docstrings write tables the Markdown way (`| a | b |`); show them as literal blocks."""
    out: list[str] = []
    in_table = False
    for line in lines:
        is_row = line.lstrip().startswith("|")
        if is_row and not in_table:
            if out and out[-1].strip():
                out.append("")
            out += ["::", ""]
        if in_table and not is_row and line.strip():
            out.append("")
        out.append(("    " + line) if is_row else line)
        in_table = is_row
    lines[:] = out


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    app.connect("autodoc-process-docstring", markdown_tables_as_literal)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
