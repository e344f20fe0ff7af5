"""The public API: every name of `regbench.__all__` imports, the interface module imports no
task/arch/optimizer/regularizer module, and `regbench.optim` works like `torch.optim`."""

from __future__ import annotations

import subprocess
import sys

import torch

import regbench


def test_every_public_name_imports():
    for name in regbench.__all__:
        assert getattr(regbench, name) is not None, name
    from regbench import (  # noqa: F401  (the documented import line)
        Arch,
        Regularizer,
        Task,
        register_arch,
        register_regularizer,
        register_task,
    )
    assert issubclass(regbench.Regularizer, object) and callable(regbench.register_task)


def test_unknown_public_name_is_an_attribute_error():
    try:
        regbench.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_interface_imports_no_task_arch_optim_or_regularizer_module():
    code = ("import sys, regbench.interface; "
            "bad = [m for m in sys.modules if m.startswith(('regbench.tasks', 'regbench.archs', "
            "'regbench.optim', 'regbench.regularizers', 'regbench.train'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_import_regbench_alone_is_light():
    code = "import sys, regbench; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_fused_optimizers_import_like_torch_optim():
    from regbench.optim import FusedAdam, FusedAdamW, FusedSGD

    p = torch.nn.Parameter(torch.ones(4))
    for cls in (FusedSGD, FusedAdam, FusedAdamW):
        assert issubclass(cls, torch.optim.Optimizer)
        opt = cls([p], lr=0.1)
        p.grad = torch.ones(4)
        opt.step()
    assert set(regbench.optim.__all__) >= {"FusedSGD", "FusedAdam", "FusedAdamW"}
