"""Philox4x32-10 known answers and the counter layout, on every backend."""

from __future__ import annotations

import pytest
import torch

from regbench import kernels as K
from regbench.kernels import _backend
from regbench.kernels import reference as R

# Random123 tests/kat_vectors, "philox4x32 10" lines: counter (4 words), key (2), expected (4).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
NATIVE = [b for b in ("avx512", "avx2", "scalar") if b in K.available_backends()]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_reference_known_answers(ctr, key, expected) -> None:
    out = R.philox4x32(*[torch.tensor([c], dtype=torch.int64) for c in ctr], *key)
    assert [int(o) for o in out] == list(expected)


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_native_known_answers(name, ctr, key, expected) -> None:
    ext = K.load_extension()
    rows = torch.tensor([ctr] * 37, dtype=torch.int64)  # 37: SIMD batches plus a scalar tail
    out = ext.philox_raw(rows, key[0], key[1], _backend.ISA[name])
    assert torch.equal(out, torch.tensor([expected] * 37, dtype=torch.int64))


@pytest.mark.parametrize("name", NATIVE)
def test_native_matches_reference_on_random_counters(name) -> None:
    g = torch.Generator().manual_seed(5)
    ctr = torch.randint(0, 2**32, (301, 4), generator=g, dtype=torch.int64)
    k0, k1 = 0x9E3779B9, 0x7F4A7C15
    want = torch.stack(R.philox4x32(*ctr.unbind(1), k0, k1), dim=1)
    got = K.load_extension().philox_raw(ctr, k0, k1, _backend.ISA[name])
    assert torch.equal(got, want)


def test_counter_layout() -> None:
    seed, offset = (7 << 32) | 11, 2**32 - 2  # key word 1 non-zero; counter carries into hi
    words = R.random_words(13, seed, offset)
    for j in range(13):
        n = offset + j // 4
        one = R.philox4x32(
            *[torch.tensor([v]) for v in (n & 0xFFFFFFFF, n >> 32, 0, 0)], 11, 7
        )
        assert int(words[j]) == int(one[j % 4])


def test_threshold_and_scale() -> None:
    assert R.threshold(0.0) == 0
    assert R.threshold(1e-7) == 2
    assert R.threshold(0.5) == 2**23
    assert R.threshold(1.0) == 2**24
    assert R.scale(0.1) == float(torch.tensor(1 / 0.9, dtype=torch.float64).float())
    assert R.scale(0.5) == 2.0
    assert R.scale(1.0) == 0.0
    assert R.counters_used(0) == 0 and R.counters_used(5) == 2 and R.counters_used(8) == 2


def test_backend_names() -> None:
    assert K.backend() in K.BACKENDS
    assert "reference" in K.available_backends()
    with K.use_backend("reference"):
        assert K.backend() == "reference"
    with pytest.raises(ValueError, match="'nope'"):
        K.set_backend("nope")
