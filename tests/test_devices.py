"""Cells on a device: identity, the CUDA step accounting, and --device without a GPU."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from regbench import devices
from regbench.errors import RegbenchError, UnknownNameError
from regbench.loss_log import DeviceLog, Diverged, HostLog
from regbench.losses import DeterministicCrossEntropy
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU in this session")


def cell(device="cpu", reg="none", strength=0.0, arch="mlp", task="digits"):
    return Cell(TaskSpec(task), ArchSpec(arch), RegSpec(reg, strength), 0,
                freeze({"epochs": 2}), device=device)


def test_cpu_cells_keep_their_ids_and_json():
    c = cell()
    assert "device" not in c.key() and "device" not in json.loads(c.to_json())
    # the id of a CPU cell is the hash of exactly the fields it had before `device`
    import hashlib
    blob = json.dumps(c.key(), sort_keys=True, separators=(",", ":"))
    assert c.cell_id == hashlib.sha256(blob.encode()).hexdigest()[:16]
    g = cell("cuda:NVIDIA H200")
    assert g.key()["device"] == "cuda:NVIDIA H200" and g.cell_id != c.cell_id
    assert cell("cuda:NVIDIA A100-SXM4-80GB").cell_id not in (c.cell_id, g.cell_id)
    assert Cell.from_json(g.to_json()) == g and Cell.from_json(c.to_json()) == c
    assert "cuda:NVIDIA H200" in g.describe()


def test_resolve():
    assert devices.resolve("cpu") == "cpu"
    with pytest.raises(UnknownNameError, match="valid choices: cpu, cuda"):
        devices.resolve("tpu")
    if not CUDA:
        with pytest.raises(RegbenchError, match="no usable CUDA GPU"):
            devices.resolve("cuda")
    assert devices.on([cell()], "cpu")[0].device == "cpu"
    assert devices.on([cell()], "cuda:X")[0].device == "cuda:X"


@pytest.mark.skipif(CUDA, reason="checks the no-GPU path")
def test_a_cuda_cell_on_a_cpu_worker_fails_cleanly():
    r = run_cell(cell("cuda:NVIDIA H200"))
    assert r.status == "failed" and "no usable CUDA GPU on this worker" in r.error


@pytest.mark.skipif(CUDA, reason="checks the no-GPU path")
@pytest.mark.parametrize("argv", [
    ["-m", "regbench", "run", "--matrix", "smoke"],
    ["-m", "regbench.report", "--matrix", "smoke", "--out", "REPORT"],
    ["-m", "regbench", "claims", "--fast"],
])
@pytest.mark.slow
def test_device_cuda_without_a_gpu_exits_2_and_stores_nothing(tmp_path, argv):
    store = tmp_path / "s.sqlite"
    argv = [a.replace("REPORT", str(tmp_path / "r")) for a in argv]
    proc = subprocess.run([sys.executable, *argv, "--store", str(store), "--device", "cuda"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "--device cuda: no usable CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not store.exists() and not (tmp_path / "r").exists()


def test_device_log_matches_host_log_and_finds_the_first_bad_step():
    losses = [torch.tensor(v) for v in (0.5, 0.25, 2.0)]
    host, dev = HostLog("mean"), DeviceLog("mean", torch.device("cpu"))
    for log in (host, dev):
        log.start_epoch()
        for step, loss in enumerate(losses, 1):
            log.add(step, 1, loss, None, 4)
    assert host.end_epoch(1) == dev.end_epoch(1) == pytest.approx(4 * 2.75)
    dev.start_epoch()
    for step, v in enumerate((1.0, float("nan"), float("inf"), 1.0), 1):
        dev.add(step, 3, torch.tensor(v), torch.tensor(0.0), 2)
    with pytest.raises(Diverged) as info:
        dev.end_epoch(3)
    assert info.value.step == 2 and info.value.epoch == 3
    dev.start_epoch()
    dev.add(7, 4, torch.tensor(1.0), torch.tensor(float("inf")), 2)  # a non-finite penalty
    with pytest.raises(Diverged, match="step 7"):
        dev.end_epoch(4)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_deterministic_cross_entropy_matches_torch(eps, reduction):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(17, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (17,), generator=g)
    ours = DeterministicCrossEntropy(reduction, label_smoothing=eps)(out, y)
    ref = F.cross_entropy(out, y, reduction=reduction, label_smoothing=eps)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)
    (ga,) = torch.autograd.grad(ours, out)
    (gb,) = torch.autograd.grad(ref, out)
    assert torch.allclose(ga, gb, rtol=1e-10, atol=1e-12)


@needs_cuda
@pytest.mark.parametrize("reg,strength,arch", [("none", 0.0, "mlp"), ("dropout", 0.3, "mlp"),
                                               ("augment", 0.1, "cnn"),
                                               ("stochastic_depth", 0.3, "resmlp")])
def test_same_cuda_cell_twice_is_bitwise_identical(reg, strength, arch):
    dev = devices.resolve("cuda")
    c = cell(dev, reg, strength, arch)
    a, b = run_cell(c), run_cell(c)
    assert a.status == b.status == "ok", a.error
    assert a.provenance["device"] == dev
    for k in ("train_loss", "test_loss", "val_loss", "train_metric", "test_metric"):
        assert a.metrics[k] == b.metrics[k]
    assert [r["train_loss"] for r in a.curves] == [r["train_loss"] for r in b.curves]
    cpu = run_cell(dataclasses.replace(c, device="cpu"))
    assert cpu.cell.cell_id != a.cell.cell_id and cpu.provenance["device"] == "cpu"


@needs_cuda
def test_cuda_step_loop_does_not_sync_per_step(monkeypatch):
    """Count host reads: .item()/.tolist() on CUDA tensors happen per epoch, not per step."""
    dev = devices.resolve("cuda")
    calls = {"n": 0}
    real_item = torch.Tensor.item

    def item(self):
        calls["n"] += self.is_cuda
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", item)
    c = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("none"), 0,
             freeze({"epochs": 3, "batch_size": 16}), device=dev)
    r = run_cell(c)
    assert r.status == "ok", r.error
    steps = 3 * -(-r.metrics["n_train"] // 16)
    assert calls["n"] < steps / 4  # a few per epoch (evaluation), none per step
