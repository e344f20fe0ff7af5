"""An archive's MANIFEST: one `sha256  path` line per file, in `sha256sum`'s format."""

from __future__ import annotations

import hashlib
from pathlib import Path

from regbench.errors import RegbenchError

MANIFEST = "MANIFEST"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_under(folder: Path) -> list[str]:
    """Every file under `folder` (but MANIFEST), as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)


def write(folder: Path) -> Path:
    """Write `folder`/MANIFEST for every file under `folder`."""
    lines = [f"{sha256_file(folder / name)}  {name}" for name in files_under(folder)]
    path = folder / MANIFEST
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read(path: Path, where: str) -> dict[str, str]:
    """{path: sha256} from a MANIFEST file; `where` names the archive in errors."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegbenchError(f"{where}: its MANIFEST cannot be read ({exc}); nothing was "
                            f"rendered") from None
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or name in out:
            raise RegbenchError(f"{where}: MANIFEST line {n} is not `SHA256  PATH` once per "
                                f"file ({line[:80]!r}); the archive is damaged, nothing was "
                                f"rendered")
        out[name] = digest
    return out


def verify(folder: Path, where: str) -> None:
    """Every file under `folder` is in its MANIFEST with that sha256, and every file the
    MANIFEST lists is there; else one line naming the first file that is not."""
    listed = read(folder / MANIFEST, where)
    present = set(files_under(folder))
    for name, digest in listed.items():
        if name not in present:
            raise RegbenchError(f"{where}: {name} is in the MANIFEST but not in the archive; "
                                f"the archive is damaged, nothing was rendered")
        got = sha256_file(folder / name)
        if got != digest:
            raise RegbenchError(f"{where}: {name} fails its MANIFEST checksum (sha256 {got}, "
                                f"MANIFEST says {digest}); the archive was changed or damaged, "
                                f"nothing was rendered")
    extra = sorted(present - set(listed))
    if extra:
        raise RegbenchError(f"{where}: {extra[0]} is not in the MANIFEST (the archive was "
                            f"changed after it was made); nothing was rendered")
