"""Upgrading a real schema-1 store (tests/data/store_v1.sqlite, written by the v1 code)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from regbench.errors import StoreError
from regbench.store import SCHEMA_VERSION, Store, migrations  # noqa: F401

FIXTURE = Path(__file__).parent / "data" / "store_v1.sqlite"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of the v1 tables, read without writing."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in ("meta", "cells", "curves", "artifacts", "bench")}
    finally:
        con.close()


def schema(path: Path) -> set[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return set(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        con.close()


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    p = tmp_path / "results.sqlite"
    shutil.copy(FIXTURE, p)
    return p


def test_fixture_is_a_small_real_v1_store():
    assert FIXTURE.stat().st_size < 1_000_000
    before = rows(FIXTURE)
    assert dict(before["meta"])["schema_version"] == "1"
    assert len(before["cells"]) == 2 and before["curves"] and before["artifacts"]


def test_v1_store_is_upgraded_in_place_after_a_backup(v1):
    before = rows(v1)
    said: list[str] = []
    with Store(v1, log=said.append) as s:
        assert s.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                             ).fetchone()[0] == str(SCHEMA_VERSION)
        assert s.con.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
        assert len(s.frame()) == 2
    bak = v1.with_name("results.sqlite.v1.bak")
    assert said == [f"upgraded store {v1} from schema version 1 to {SCHEMA_VERSION} "
                    f"(backup of the old file: {bak})"]
    assert rows(bak) == before  # the backup is the old store, row for row
    after = rows(v1)
    assert dict(after["meta"])["schema_version"] == str(SCHEMA_VERSION)
    # every old row is kept; schema 3 appends the stack columns ('' = a single regularizer)
    # and plugin_code (NULL = built-in code); schema 4 the tune field ('' = a grid cell)
    assert after["cells"] == [(*row, "", "", None, "") for row in before["cells"]]
    assert {k: v for k, v in after.items() if k not in ("meta", "cells")} == \
        {k: v for k, v in before.items() if k not in ("meta", "cells")}
    with Store(v1, log=said.append):  # already current: no second upgrade, no second backup
        pass
    assert len(said) == 1
    assert sorted(p.name for p in v1.parent.glob("results.sqlite.v1.bak*")) == [bak.name]


def test_upgraded_schema_is_the_fresh_schema(v1, tmp_path):
    Store(v1, log=lambda _: None).close()
    Store(tmp_path / "fresh.sqlite").close()
    assert schema(v1) == schema(tmp_path / "fresh.sqlite")


def test_backup_name_never_overwrites(v1):
    taken = v1.with_name("results.sqlite.v1.bak")
    taken.write_text("someone's file")
    Store(v1, log=lambda _: None).close()
    assert taken.read_text() == "someone's file"
    assert rows(v1.with_name("results.sqlite.v1.bak.2"))["cells"] == rows(FIXTURE)["cells"]


def test_failed_upgrade_leaves_the_original_untouched(v1, monkeypatch):
    def half_then_fail(con: sqlite3.Connection) -> None:
        migrations._v1_to_v2(con)  # a step that did some of its work...
        con.execute("DELETE FROM artifacts")
        raise RuntimeError("disk on fire")  # ...and then failed

    monkeypatch.setitem(migrations.MIGRATIONS, 1, half_then_fail)
    before, before_digest = rows(v1), digest(v1)
    with pytest.raises(StoreError, match=rf"upgrading .* to store schema version "
                                         rf"{SCHEMA_VERSION} failed \(RuntimeError: disk on "
                                         r"fire\); the store is left untouched"):
        Store(v1)
    assert digest(v1) == before_digest and rows(v1) == before
    assert "leases" not in {r[1] for r in schema(v1)}
    assert not list(v1.parent.glob("*.bak*"))  # the backup of an untouched store is dropped
    monkeypatch.undo()
    with Store(v1, log=lambda _: None) as s:  # the real upgrade still works afterwards
        assert len(s.frame()) == 2


def test_no_upgrade_path_is_refused_untouched(v1, monkeypatch):
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    before = digest(v1)
    with pytest.raises(StoreError, match="no upgrade from version 1; left untouched"):
        Store(v1)
    assert digest(v1) == before and not list(v1.parent.glob("*.bak*"))


def test_two_processes_opening_an_old_store_upgrade_it_once(v1):
    said: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def open_it() -> None:
        try:
            start.wait()
            Store(v1, log=said.append).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(said) == 1
    assert len(list(v1.parent.glob("*.bak*"))) == 1


def test_cli_says_it_upgraded(v1):
    proc = subprocess.run([sys.executable, "-m", "regbench", "show", "--store", str(v1),
                           "--format", "csv"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"regbench: upgraded store {v1} from schema version 1 to {SCHEMA_VERSION}" \
        in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 3  # header + 2 cells


def test_schema_4_store_gains_the_conflicts_table(tmp_path):
    """Schema 5 adds `conflicts` (a cell's second result, kept by `regbench merge`)."""
    v4 = tmp_path / "v4.sqlite"
    Store(v4).close()
    con = sqlite3.connect(v4)
    with con:
        con.execute("DROP TABLE conflicts")
        con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    con.close()
    said: list[str] = []
    with Store(v4, log=said.append) as s:
        assert s.con.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0
    bak = v4.with_name("v4.sqlite.v4.bak")
    assert said == [f"upgraded store {v4} from schema version 4 to {SCHEMA_VERSION} "
                    f"(backup of the old file: {bak})"]
    assert "conflicts" not in {r[1] for r in schema(bak)}
    Store(tmp_path / "fresh.sqlite").close()
    assert schema(v4) == schema(tmp_path / "fresh.sqlite")
