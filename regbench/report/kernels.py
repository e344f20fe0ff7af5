"""Kernel benchmark rows, reduced to the two answers a reader wants: how much faster than
native, and how close to the bandwidth limit (a same-size `copy_` measured in the same run).

- `latest_bench`: the most recent row per configuration (bench.csv holds these raw rows).
- `comparisons`: one row per (device, threads, dtype, op, size, our impl, native baseline):
  speed-up = native time / our time, from the same run.
- `bandwidth`: one row per (device, threads, dtype, op, size, impl) with its achieved GB/s
  as a fraction of the same-size `copy_` GB/s (1.0 = at the copy roofline).
- `pivot`: the table: per (device, threads, dtype, op, size) our primary implementation (the
  first one the benchmark lists), the fastest native baseline at that size (the honest
  comparison), the speed-up over it and our fraction of copy bandwidth.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CONFIG = ["device", "threads", "dtype"]
PIVOT_COLUMNS = ["device", "threads", "dtype", "op", "numel", "ours", "ours_us", "native",
                 "native_us", "speedup", "fraction_of_copy"]


def latest_bench(bench: pd.DataFrame) -> pd.DataFrame:
    """The most recent row per (op, impl, baseline, backend, dtype, numel, threads, device)."""
    if bench.empty:
        return bench
    keys = ["op", "impl", "baseline", "backend", "dtype", "numel", "threads", "device"]
    b = bench.sort_values("id", kind="stable")
    b = b.groupby(keys, dropna=False, sort=False).tail(1)
    b = b.assign(device=b.device.fillna("cpu").astype(str), dtype=b.dtype.astype(str))
    return b.sort_values(["op", "device", "dtype", "threads", "impl", "numel"],
                         kind="stable").reset_index(drop=True)


def where(device: str, threads: object) -> str:
    """A device configuration's name: `cpu, 2 threads`, or the device itself (GPU rows)."""
    if device != "cpu":
        return device
    n = int(threads) if pd.notna(threads) else 0
    return f"cpu, {n} thread" + ("s" if n != 1 else "")


def comparisons(b: pd.DataFrame) -> pd.DataFrame:
    """Our rows against each native baseline: `speedup` = native time / our time."""
    ours = b[b.baseline.notna() & b.ratio_vs_native.notna()]
    out = ours.assign(speedup=1.0 / ours.ratio_vs_native.astype(float))
    return out[[*CONFIG, "op", "numel", "impl", "baseline", "median_s", "speedup", "id"]]


def bandwidth(b: pd.DataFrame) -> pd.DataFrame:
    """Every impl with a GB/s figure, as a fraction of the same-size copy_ of its config."""
    copy = b[b.op == "copy"][[*CONFIG, "numel", "gbps"]].rename(columns={"gbps": "copy_gbps"})
    rows = b[(b.op != "copy") & b.gbps.notna()].drop_duplicates([*CONFIG, "op", "impl", "numel"])
    m = rows.merge(copy, on=[*CONFIG, "numel"], how="inner")
    m = m.assign(fraction_of_copy=m.gbps.astype(float) / m.copy_gbps.astype(float),
                 ours=m.baseline.notna())
    return m[[*CONFIG, "op", "numel", "impl", "ours", "gbps", "copy_gbps", "fraction_of_copy",
              "id"]].sort_values([*CONFIG, "op", "id"], kind="stable").reset_index(drop=True)


def pivot(b: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table: op x size rows per configuration (see the module docstring)."""
    comp = comparisons(b)
    bw = bandwidth(b)
    rows = []
    for (dev, thr, dt, op), g in comp.groupby([*CONFIG, "op"], sort=True, dropna=False):
        primary = g.sort_values("id", kind="stable").impl.iloc[0]
        for numel, s in g[g.impl == primary].groupby("numel", sort=True):
            fastest = s.loc[s.speedup.idxmin()]  # the smallest speed-up = the fastest native
            ours_s = float(fastest.median_s)
            f = bw[(bw.device == dev) & (bw.threads == thr) & (bw.dtype == dt) & (bw.op == op)
                   & (bw.impl == primary) & (bw.numel == numel)]
            rows.append({"device": dev, "threads": thr, "dtype": dt, "op": op,
                         "numel": int(numel), "ours": primary, "ours_us": ours_s * 1e6,
                         "native": fastest.baseline,
                         "native_us": ours_s * float(fastest.speedup) * 1e6,
                         "speedup": float(fastest.speedup),
                         "fraction_of_copy": float(f.fraction_of_copy.iloc[0]) if len(f)
                         else math.nan})
    out = pd.DataFrame(rows, columns=PIVOT_COLUMNS)
    return out.sort_values(["device", "threads", "dtype", "op", "numel"],
                           kind="stable").reset_index(drop=True)


def size_label(n: int) -> str:
    """65536 -> 64K, 16777216 -> 16M, 256 -> 256."""
    for unit, k in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= k and n % k == 0:
            return f"{n // k}{unit}"
    return str(int(n))


def geomean(x: pd.Series) -> float:
    v = x.astype(float).to_numpy()
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if len(v) else math.nan
