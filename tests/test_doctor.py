"""`regbench --version` and `regbench doctor`: one screen for a bug report, exit 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from regbench import SUITE_VERSION, __version__, doctor
from regbench.__main__ import main


def test_version_prints_the_package_and_suite_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line == f"regbench {__version__} (suite version {SUITE_VERSION})"


def test_doctor_exits_0_with_every_line_a_bug_report_needs():
    out = subprocess.run([sys.executable, "-m", "regbench", "doctor"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    labels = [line.split("  ")[0] for line in out.stdout.splitlines()]
    for label in ("regbench", "Python", "torch", "CPU", "SIMD flags", "kernel backend",
                  "C++ build", "Triton", "torch CUDA", "CUDA device", "NVIDIA driver",
                  "TeX (pdflatex)", "Dask distributed", "openml", "OpenML cache"):
        assert label in labels, f"doctor has no {label!r} line:\n{out.stdout}"
    assert len(out.stdout.splitlines()) <= 30  # one screen
    assert __version__ in out.stdout and f"suite version {SUITE_VERSION}" in out.stdout


def test_doctor_does_not_build_the_kernels(monkeypatch, tmp_path):
    # an empty cache: doctor says the build is not there and would happen, and builds nothing
    monkeypatch.setenv("REGBENCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("REGBENCH_KERNEL_BACKEND", raising=False)
    rows = dict(doctor.rows())
    assert rows["C++ build"].startswith("not built yet")
    assert list(tmp_path.iterdir()) == []


def test_doctor_names_a_forced_backend(monkeypatch):
    monkeypatch.setenv("REGBENCH_KERNEL_BACKEND", "reference")
    assert dict(doctor.rows())["kernel backend"].startswith("reference (forced")


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "fma", "f16c"}, "avx2"),
    ({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq"}, "avx512"),
    ({"avx512f", "avx512bw", "avx512vl", "avx512dq"}, "scalar"),  # the extension needs avx2 too
    (set(), "scalar"),
])
def test_expected_backend_follows_the_extensions_cpu_test(flags, expected):
    assert doctor.expected_backend(flags) == expected


def test_a_failing_section_is_a_line_not_a_crash(monkeypatch):
    def broken() -> list[tuple[str, str]]:
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "_tex", broken)
    rows = doctor.rows()
    assert ("TeX", "could not be read: boom") in rows
