"""`regbench archive` and `python -m regbench.report --from`: one zip with the store, its
report, the matrix, the plugins' source and the environment, checksummed; re-rendered on
another machine (here: another folder, another process) with the same tables."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from regbench.__main__ import main
from regbench.archive import build, manifest

MATRIX = """\
name = "tiny"
seeds = 2
[[blocks]]
tasks = ["curve"]
archs = [{name = "mlp", width = 16, depth = 1}]
regularizers = ["none", "l2"]
strengths = "first"
protocol = {epochs = 2}
"""

PLUGIN = '''\
from strengths_of_plugin import STRENGTHS

from regbench import Regularizer, register_regularizer


@register_regularizer("archived_l2")
class ArchivedL2(Regularizer):
    """An L2 penalty written as a plugin, its strengths in a module beside it."""

    version = "1"
    default_strengths = STRENGTHS

    def penalty(self, model):
        return self.strength * sum((p ** 2).sum() for p in model.parameters())
'''

PLUGIN_MATRIX = """\
name = "plugged"
seeds = 2
plugins = ["code/archived_l2.py"]
[[blocks]]
tasks = ["curve"]
archs = [{name = "mlp", width = 16, depth = 1}]
regularizers = ["none", "archived_l2"]
strengths = "first"
protocol = {epochs = 2}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command line in a fresh process, as on another machine."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny.toml and the store of its 4 cells."""
    d = tmp_path_factory.mktemp("tiny")
    (d / "tiny.toml").write_text(MATRIX)
    assert main(["run", "--matrix", str(d / "tiny.toml"), "--store", str(d / "s.sqlite"),
                 "--no-progress"]) == 0
    return d


def fake_report(args, store: Path, out: Path) -> str:
    """The report, without its minutes of claims and figures: one table from the store."""
    con = sqlite3.connect(store)
    n = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    con.close()
    out.mkdir(parents=True)
    (out / "README.md").write_text(f"{n} cells\n")
    return f"python -m regbench.report --matrix {args.matrix}"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "render_report", fake_report)


def test_manifest_lists_every_file_and_catches_a_change(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "y.bin").write_bytes(b"\0\1")
    text = manifest.write(tmp_path).read_text()
    assert text == (f"{hashlib.sha256(b'x').hexdigest()}  a/x.txt\n"
                    f"{hashlib.sha256(bytes([0, 1])).hexdigest()}  y.bin\n")
    manifest.verify(tmp_path, "here")
    (tmp_path / "y.bin").write_bytes(b"\0\2")
    with pytest.raises(Exception, match="here: y.bin fails its MANIFEST checksum"):
        manifest.verify(tmp_path, "here")


def test_archive_holds_store_matrix_environment_and_checksums(tiny, tmp_path, quick, capsys):
    out = tmp_path / "results.zip"
    assert main(["archive", "--store", str(tiny / "s.sqlite"), "--matrix",
                 str(tiny / "tiny.toml"), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"archive {out}: ") and f"--from {out}" in said
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "x")
    x = tmp_path / "x"
    assert names[0] == "MANIFEST"
    assert {"archive.json", "store/results.sqlite", "report/README.md", "matrix/tiny.toml",
            "environment/doctor.txt", "environment/packages.txt"} <= set(names)
    manifest.verify(x, "archive")  # sha256sum -c MANIFEST, in Python
    assert (x / "matrix" / "tiny.toml").read_text() == MATRIX
    assert (x / "report" / "README.md").read_text() == "4 cells\n"
    assert "regbench " in (x / "environment" / "doctor.txt").read_text()
    assert any(line.startswith(("torch==", "pandas=="))
               for line in (x / "environment" / "packages.txt").read_text().splitlines())
    info = json.loads((x / "archive.json").read_text())
    assert info["matrix"] == {"file": "matrix/tiny.toml"} and info["plugins"] == []
    assert info["report_command"].startswith("python -m regbench.report --matrix ")
    # the store is one file (no -wal), intact, every cell in it
    assert main(["check", "--store", str(x / "store" / "results.sqlite")]) == 0
    assert "4 cell(s) (4 ok)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.zip", "x"]


def test_a_builtin_matrix_is_archived_as_its_toml(tiny, tmp_path, quick):
    from regbench import matrix

    out = tmp_path / "r.zip"
    assert main(["archive", "--store", str(tiny / "s.sqlite"), "--matrix", "smoke",
                 "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as zf:
        assert zf.read("matrix/smoke.toml").decode() == matrix.text("smoke")
        assert json.loads(zf.read("archive.json"))["matrix"]["builtin"] == "smoke"


def test_from_verifies_then_renders_the_unpacked_archive(tiny, tmp_path, quick, monkeypatch):
    out = tmp_path / "r.zip"
    assert main(["archive", "--store", str(tiny / "s.sqlite"), "--matrix",
                 str(tiny / "tiny.toml"), "--out", str(out)]) == 0
    seen = {}

    def fake_run(args):
        seen.update(store=Path(args.store).read_bytes(), matrix=Path(args.matrix).read_text(),
                    no_run=args.no_run, command=args.report_command, out=args.out)
        return 0

    import regbench.report.cli as report_cli
    from regbench.report.cli import main as report_main

    monkeypatch.setattr(report_cli, "run", fake_run)
    assert report_main(["--from", str(out), "--out", str(tmp_path / "again")]) == 0
    with zipfile.ZipFile(out) as zf:
        assert seen["store"] == zf.read("store/results.sqlite")
    assert seen["matrix"] == MATRIX and seen["no_run"]
    assert seen["command"].startswith("python -m regbench.report --matrix ")
    assert seen["out"] == str(tmp_path / "again")


def rezip(src: Path, dest: Path, change: dict[str, bytes | None]) -> None:
    """`src` with members replaced (None: dropped) or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            if name not in change:
                zout.writestr(name, zin.read(name))
        for name, data in change.items():
            if data is not None:
                zout.writestr(name, data)


@pytest.fixture
def archived(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("archived")
    out = d / "r.zip"
    mp = pytest.MonkeyPatch()
    mp.setattr(build, "render_report", fake_report)
    try:
        assert main(["archive", "--store", str(tiny / "s.sqlite"), "--matrix",
                     str(tiny / "tiny.toml"), "--out", str(out)]) == 0
    finally:
        mp.undo()
    return out


def _manifest_with(zip_path: Path, info: dict) -> bytes:
    with zipfile.ZipFile(zip_path) as zf:
        lines = zf.read("MANIFEST").decode().splitlines()
    data = json.dumps(info).encode()
    return "".join((f"{hashlib.sha256(data).hexdigest()}  archive.json" if
                    line.endswith("  archive.json") else line) + "\n" for line in lines).encode()


@pytest.mark.parametrize("case, needle", [
    ("changed", "report/README.md fails its MANIFEST checksum"),
    ("extra", "extra.txt is not in the MANIFEST"),
    ("missing", "matrix/tiny.toml is in the MANIFEST but not in the archive"),
    ("no-manifest", "has no MANIFEST"),
    ("unsafe", "holds a path outside the archive ('../evil.txt')"),
    ("not-zip", "is not a readable zip file"),
    ("other-suite", "was made under suite version '0'"),
    ("absent", "no such file"),
    ("option", "takes the store, the matrix and the plugins from the archive; drop --matrix"),
])
def test_from_refuses_with_one_line(archived, tmp_path, capsys, case, needle):
    from regbench.report.cli import main as report_main

    bad = tmp_path / "bad.zip"
    extra: list[str] = []
    if case == "changed":
        rezip(archived, bad, {"report/README.md": b"5 cells\n"})
    elif case == "extra":
        rezip(archived, bad, {"extra.txt": b"x"})
    elif case == "missing":
        rezip(archived, bad, {"matrix/tiny.toml": None})
    elif case == "no-manifest":
        rezip(archived, bad, {"MANIFEST": None})
    elif case == "unsafe":
        rezip(archived, bad, {"../evil.txt": b"x"})
    elif case == "not-zip":
        bad.write_bytes(archived.read_bytes()[:200])
    elif case == "other-suite":
        with zipfile.ZipFile(archived) as zf:
            info = json.loads(zf.read("archive.json"))
        info["suite_version"] = "0"
        rezip(archived, bad, {"archive.json": json.dumps(info).encode(),
                              "MANIFEST": _manifest_with(archived, info)})
    elif case == "absent":
        bad = tmp_path / "none.zip"
    else:
        shutil.copy(archived, bad)
        extra = ["--matrix", "smoke"]
    out = tmp_path / "report"
    rc = report_main(["--from", str(bad), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert err.startswith("regbench.report: error: ")
    assert not out.exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("case, needle", [
    ("exists", "exists; pass --force"),
    ("not-zip", "an archive is a .zip file"),
    ("no-store", "no store at"),
    ("damaged", "fails SQLite's integrity check"),
    ("matrix", "unknown matrix (or a .toml file) 'nope'"),
])
def test_archive_refuses_with_one_line_and_writes_nothing(tiny, tmp_path, capsys, case,
                                                          needle):
    store, out, matrix = tiny / "s.sqlite", tmp_path / "r.zip", str(tiny / "tiny.toml")
    if case == "exists":
        out.write_text("precious")
    elif case == "not-zip":
        out = tmp_path / "r.tar"
    elif case == "no-store":
        store = tmp_path / "none.sqlite"
    elif case == "damaged":
        data = bytearray(store.read_bytes())
        data[4096:8192] = b"\xff" * 4096
        store = tmp_path / "damaged.sqlite"
        store.write_bytes(bytes(data))
    else:
        matrix = "nope"
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    rc = main(["archive", "--store", str(store), "--matrix", matrix, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before


def plugin_project(folder: Path) -> None:
    """A matrix file naming a plugin file that imports a module beside it."""
    (folder / "code").mkdir()
    (folder / "code" / "archived_l2.py").write_text(PLUGIN)
    (folder / "code" / "strengths_of_plugin.py").write_text("STRENGTHS = (1e-3,)\n")
    (folder / "m.toml").write_text(PLUGIN_MATRIX)


def test_cells_of_plugin_code_that_changed_since_refuse_the_archive(tiny, tmp_path, capsys):
    """The sha256 a cell recorded for its plugin's file no longer matches the file."""
    plugin = tmp_path / "mine.py"
    plugin.write_text("# the plugin as it is now\n")
    store = tmp_path / "s.sqlite"
    shutil.copy(tiny / "s.sqlite", store)
    code = [{"kind": "regularizer", "name": "mine", "version": "1", "file": str(plugin),
             "sha256": hashlib.sha256(b"# the plugin as it was\n").hexdigest()}]
    con = sqlite3.connect(store)
    with con:
        con.execute("UPDATE cells SET plugin_code = ? WHERE regularizer = 'l2'",
                    (json.dumps(code),))
    con.close()
    rc = main(["archive", "--store", str(store), "--matrix", str(tiny / "tiny.toml"),
               "--out", str(tmp_path / "r.zip")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert (f"plugin regularizer 'mine' version 1: its 2 stored cell(s) were made with {plugin} "
            f"at sha256 {code[0]['sha256'][:16]}..., and that file now has sha256 "
            f"{digest(plugin)[:16]}...; nothing was archived") in err
    assert not (tmp_path / "r.zip").exists()
    plugin.unlink()
    assert main(["archive", "--store", str(store), "--matrix", str(tiny / "tiny.toml"),
                 "--out", str(tmp_path / "r.zip")]) == 2
    assert f"were made with {plugin}, which cannot be read now" in capsys.readouterr().err


@pytest.mark.slow
def test_a_plugin_whose_source_changed_is_refused(tmp_path):
    """The same with a real plugin: a module it imports is edited after its cells ran."""
    plugin_project(tmp_path)
    r = cli("regbench", "run", "--matrix", "m.toml", "--store", "p.sqlite", "--no-progress",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with (tmp_path / "code" / "strengths_of_plugin.py").open("a") as f:
        f.write("# edited after the cells ran\n")
    r = cli("regbench", "archive", "--matrix", "m.toml", "--store", "p.sqlite", "--out",
            "p.zip", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "p.zip").exists()
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1, r.stderr
    assert "plugin regularizer 'archived_l2' version 1: its 2 stored cell(s) were made with " \
        f"{tmp_path.resolve() / 'code' / 'strengths_of_plugin.py'} at sha256" in err[0]
    assert "nothing was archived" in err[0]


def report_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


@pytest.mark.slow
def test_archive_then_from_elsewhere_reproduces_the_tables(tmp_path):
    """The real report: the plugin project archived in one folder and re-rendered in a
    fresh one (another process, another path): every file byte for byte (Markdown, CSV,
    LaTeX, the figures and report.html)."""
    made = tmp_path / "made"
    made.mkdir()
    plugin_project(made)
    r = cli("regbench", "run", "--matrix", "m.toml", "--store", "p.sqlite", "--no-progress",
            cwd=made)
    assert r.returncode == 0, r.stderr
    r = cli("regbench", "archive", "--matrix", "m.toml", "--store", "p.sqlite", "--out",
            "results.zip", cwd=made)
    assert r.returncode == 0, r.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(made / "results.zip", elsewhere / "results.zip")
    shutil.rmtree(made)  # the plugin's folder is gone: only the archive's copy is left
    r = cli("regbench.report", "--from", "results.zip", "--out", "again", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(elsewhere / "results.zip") as zf:
        names = zf.namelist()
        zf.extractall(elsewhere / "x")
    assert {"matrix/m.toml", "matrix/code/archived_l2.py",
            "matrix/code/strengths_of_plugin.py"} <= set(names)
    archived = report_files(elsewhere / "x" / "report")
    again = report_files(elsewhere / "again")
    assert {"README.md", "tables.tex", "summary.csv", "report.html"} <= set(archived)
    assert any(name.endswith(".png") for name in archived)
    assert archived == again
