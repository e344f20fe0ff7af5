"""Fused optimizer steps (regbench.optim): bitwise against the reference composition and
torch.optim on the CPU, every native backend, fp32 and fp64; custom-op checks; compile; the
`fused` backend of the l1 / l2 / weight_decay / adamw regularizers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from regbench import kernels as K
from regbench.errors import RegbenchError
from regbench.kernels import reference as KR
from regbench.optim import FUSED, fused_step, make_optimizer
from regbench.optim import reference as R
from regbench.optim.fused_adamw import FusedAdam, FusedAdamW
from regbench.optim.fused_sgd import FusedSGD
from regbench.regularizers.base import OptimConfig, decay_params

BACKENDS = K.available_backends()  # avx512 / avx2 / scalar where built, always reference
SIZES = (1, 7, 33, 1025, 4099, 9000)  # SIMD tails, several 4096-element work items
SGD_CASES = [  # momentum, dampening, nesterov, weight_decay, l2, l1
    (0.0, 0.0, False, 0.0, 0.0, 0.0),
    (0.0, 0.0, False, 1e-2, 0.0, 0.0),
    (0.9, 0.0, False, 0.0, 1e-2, 0.0),
    (0.9, 0.1, False, 1e-3, 1e-2, 1e-3),
    (0.9, 0.0, True, 1e-2, 0.0, 1e-3),
    (0.5, 0.0, False, 0.0, 0.0, 1e-2),
]
ADAM_CASES = [  # betas, weight_decay, l2, l1 (beta1 = 0.3: lerp's large-weight branch)
    ((0.9, 0.999), 1e-2, 0.0, 0.0),
    ((0.9, 0.999), 0.0, 1e-2, 1e-3),
    ((0.3, 0.99), 0.1, 1e-2, 1e-3),
    ((0.9, 0.999), 0.0, 0.0, 0.0),
]


def _data(dtype: torch.dtype, steps: int = 3, sizes=SIZES):  # noqa: ANN001, ANN202
    g = torch.Generator().manual_seed(11)
    ps = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in sizes]
    ps[-1][0] = 0.0  # sign(0) = 0
    gss = [[torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in sizes]
           for _ in range(steps)]
    return ps, gss


def _run(make, ps, gss, before_step=None):  # noqa: ANN001, ANN202
    ps = [p.clone().requires_grad_() for p in ps]
    opt = make(ps)
    for gs in gss:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        if before_step is not None:
            before_step(ps)
        opt.step()
    return ps, opt


def _elastic(l2: float, l1: float):  # noqa: ANN202
    """The reference composition's first half: grad += l2*p + l1*sign(p) (reference.py)."""
    return (lambda ps: KR.elastic_net_(ps, l2, l1)) if (l2 or l1) else None


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _state(opt: torch.optim.Optimizer, ps: list[torch.Tensor], key: str) -> list[torch.Tensor]:
    return [opt.state[p][key] for p in ps]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_bitwise_reference_composition(backend, dtype, case) -> None:
    mom, damp, nest, wd, l2, l1 = case
    ps, gss = _data(dtype)
    with K.use_backend(backend):
        got, o1 = _run(lambda q: FusedSGD(q, lr=0.05, momentum=mom, dampening=damp,
                                          nesterov=nest, weight_decay=wd, l2=l2, l1=l1), ps, gss)
    want, o2 = _run(lambda q: torch.optim.SGD(q, lr=0.05, momentum=mom, dampening=damp,
                                              nesterov=nest, weight_decay=wd, foreach=False),
                    ps, gss, _elastic(l2, l1))
    assert _same(got, want)
    if mom:
        assert _same(_state(o1, got, "momentum_buffer"), _state(o2, want, "momentum_buffer"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ADAM_CASES)
@pytest.mark.parametrize("fused_cls,torch_cls", [(FusedAdamW, torch.optim.AdamW),
                                                 (FusedAdam, torch.optim.Adam)])
def test_adam_bitwise_reference_composition(backend, dtype, case, fused_cls, torch_cls) -> None:
    betas, wd, l2, l1 = case
    ps, gss = _data(dtype)
    with K.use_backend(backend):
        got, o1 = _run(lambda q: fused_cls(q, lr=1e-2, betas=betas, weight_decay=wd, l2=l2,
                                           l1=l1), ps, gss)
    want, o2 = _run(lambda q: torch_cls(q, lr=1e-2, betas=betas, weight_decay=wd,
                                        foreach=False), ps, gss, _elastic(l2, l1))
    assert _same(got, want)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert _same(_state(o1, got, key), _state(o2, want, key))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fused_cls", [FusedAdamW, FusedAdam])
def test_adam_ieee_sqrt_bitwise_reference(backend, dtype, fused_cls) -> None:
    """sqrt="ieee" == the reference with torch.sqrt replaced by IEEE sqrt, bitwise; and within
    a few ulp of torch.optim after 3 steps (the denominators differ by <= 1 ulp a step)."""
    betas, wd, l2, l1 = ADAM_CASES[2]
    ps, gss = _data(dtype)
    with K.use_backend(backend):
        got, o1 = _run(lambda q: fused_cls(q, lr=1e-2, betas=betas, weight_decay=wd, l2=l2,
                                           l1=l1, sqrt="ieee"), ps, gss)
    want = [p.clone() for p in ps]
    ms, vs = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    steps = [torch.tensor(0.0) for _ in ps]
    for gs in gss:
        R.adamw_step_(want, gs, ms, vs, steps, lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-8,
                      weight_decay=wd, decoupled=fused_cls.decoupled, l2=l2, l1=l1,
                      torch_sqrt=False)
    assert _same(got, want)
    assert _same(_state(o1, got, "exp_avg_sq"), vs)
    exact, _ = _run(lambda q: fused_cls(q, lr=1e-2, betas=betas, weight_decay=wd, l2=l2, l1=l1),
                    ps, gss)
    for a, b in zip(got, exact):
        torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-13,
                                   atol=1e-6 if dtype == torch.float32 else 1e-14)


def test_reference_written_out_adam_is_torchs_with_torch_sqrt(monkeypatch) -> None:
    """The written-out update of R.adamw_step_(torch_sqrt=False), run with torch.sqrt, is
    torch.optim.AdamW's bit for bit: so only the sqrt differs between the two modes."""
    ps, gss = _data(torch.float32)
    monkeypatch.setattr(R, "ieee_sqrt", torch.sqrt)
    want, _ = _run(lambda q: torch.optim.AdamW(q, lr=1e-2, weight_decay=0.1, foreach=False),
                   ps, gss, _elastic(1e-2, 0.0))
    got = [p.clone() for p in ps]
    ms, vs = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    steps = [torch.tensor(0.0) for _ in ps]
    for gs in gss:
        R.adamw_step_(got, gs, ms, vs, steps, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8,
                      weight_decay=0.1, decoupled=True, l2=1e-2, l1=0.0, torch_sqrt=False)
    assert _same(got, want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes_run_the_reference(dtype) -> None:
    """fp16/bf16 have no C++ path: the op runs the reference composition (same bits)."""
    ps, gss = _data(dtype, sizes=(5, 40))
    got, _ = _run(lambda q: FusedSGD(q, lr=0.1, momentum=0.9, l2=1e-2, l1=1e-3), ps, gss)
    want, _ = _run(lambda q: torch.optim.SGD(q, lr=0.1, momentum=0.9, foreach=False), ps, gss,
                   _elastic(1e-2, 1e-3))
    assert _same(got, want)
    got, _ = _run(lambda q: FusedAdamW(q, lr=1e-2, l2=1e-2), ps, gss)
    want, _ = _run(lambda q: torch.optim.AdamW(q, lr=1e-2, foreach=False), ps, gss,
                   _elastic(1e-2, 0.0))
    assert _same(got, want)


def test_mixed_dtypes_and_missing_grads_in_one_group() -> None:
    ps = [torch.randn(300, dtype=torch.float64), torch.randn(50), torch.randn(20).half()]
    gss = [[torch.randn_like(p) for p in ps] for _ in range(2)]
    got, _ = _run(lambda q: FusedSGD(q, lr=0.1, momentum=0.9, l2=1e-2), ps, gss)
    want, _ = _run(lambda q: torch.optim.SGD(q, lr=0.1, momentum=0.9, foreach=False), ps, gss,
                   _elastic(1e-2, 0.0))
    assert _same(got, want)
    # a parameter without a gradient is skipped, and gets its momentum buffer when it has one
    a, b = torch.randn(10, requires_grad=True), torch.randn(10, requires_grad=True)
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    o, t = FusedSGD([a, b], lr=0.1, momentum=0.9), torch.optim.SGD([a2, b2], lr=0.1,
                                                                   momentum=0.9, foreach=False)
    for step in range(3):
        for x, y in ((a, a2), (b, b2)):
            x.grad = None if (x is b and step == 0) else torch.full((10,), 0.5 + step)
            y.grad = None if x.grad is None else x.grad.clone()
        o.step()
        t.step()
    assert torch.equal(a, a2) and torch.equal(b, b2)


def test_grad_is_left_alone_and_state_is_torchs() -> None:
    ps, gss = _data(torch.float32, steps=2, sizes=(64, 9))
    q = [p.clone().requires_grad_() for p in ps]
    opt = FusedAdamW(q, lr=1e-2, l2=0.1, l1=0.01)
    for p, g in zip(q, gss[0]):
        p.grad = g.clone()
    opt.step()
    assert _same([p.grad for p in q], gss[0])
    # the state dict loads into torch.optim.AdamW, and both continue bitwise the same
    q2 = [p.detach().clone().requires_grad_() for p in q]
    t = torch.optim.AdamW(q2, lr=1e-2, foreach=False)
    t.load_state_dict(copy.deepcopy(opt.state_dict()))
    opt.param_groups[0]["l2"] = opt.param_groups[0]["l1"] = 0.0
    for a, b, g in zip(q, q2, gss[1]):
        a.grad, b.grad = g.clone(), g.clone()
    opt.step()
    t.step()
    assert _same(q, q2)


def test_fma_probe_matches_torch() -> None:
    """The probe's answer is what torch does: with it the C++ path is bitwise (tests above);
    flipping it changes bits (so the probe is not vacuous on this machine)."""
    if not any(b in BACKENDS for b in ("avx512", "avx2", "scalar")):
        pytest.skip("C++ kernels not built")
    ext = K.load_extension()
    e = 2.0**-12
    p = torch.full((67,), 1 + e)
    g = torch.full((67,), -(1 + 2 * e))  # grad + wd * p = e**2 with one rounding, 0 with two
    out = {}
    for fma in (True, False):
        q = p.clone()
        ext.sgd_multi([q], [g], [], 1024.0, 0.0, 0.0, False, 1 + e, 0.0, 0.0, False, fma, fma, 0)
        out[fma] = q
    want = p.clone().requires_grad_()
    want.grad = g.clone()
    torch.optim.SGD([want], lr=1024.0, weight_decay=1 + e, foreach=False).step()
    assert not torch.equal(out[True], out[False])
    assert torch.equal(out[fused_step.torch_uses_fma(torch.float32)], want)


def test_opcheck_custom_ops() -> None:
    ps = [torch.randn(40), torch.randn(3, 5)]
    gs = [torch.randn_like(p) for p in ps]
    bufs = [torch.randn_like(p) for p in ps]
    torch.library.opcheck(fused_step.sgd_step_op,
                          (ps, gs, bufs, 0.1, 0.9, 0.0, True, 1e-2, 1e-2, 1e-3, False))
    ms = [torch.randn_like(p) for p in ps]
    vs = [torch.rand_like(p) for p in ps]
    steps = [torch.tensor(3.0) for _ in ps]
    torch.library.opcheck(fused_step.adamw_step_op,
                          (ps, gs, ms, vs, steps, 1e-2, 0.9, 0.999, 1e-8, 1e-2, True, 1e-2, 1e-3,
                           True))


@pytest.mark.parametrize("make", [
    lambda q: FusedSGD(q, lr=0.1, momentum=0.9, nesterov=True, l2=1e-2, l1=1e-3),
    lambda q: FusedAdamW(q, lr=1e-2, l2=1e-2, l1=1e-3),
], ids=["sgd", "adamw"])
def test_compiled_step_has_no_graph_break_and_same_bits(make) -> None:
    torch._dynamo.reset()
    ps = [torch.randn(33, 5, requires_grad=True), torch.randn(7, requires_grad=True)]
    ps2 = [p.detach().clone().requires_grad_() for p in ps]
    a, b = make(ps), make(ps2)
    for p in ps + ps2:
        p.grad = torch.linspace(-1, 1, p.numel()).reshape(p.shape)
    a.step()  # state created eagerly: the compiled step below is the steady state
    b.step()
    explain = torch._dynamo.explain(a.step)()  # traces and runs one step
    assert explain.graph_break_count == 0 and explain.graph_count == 1
    torch.compile(b.step, backend="aot_eager", fullgraph=True)()
    assert _same(ps, ps2)


def test_bad_hyperparameters_name_the_value() -> None:
    p = [torch.zeros(2, requires_grad=True)]
    for make, what in [(lambda: FusedSGD(p, lr=-1.0), "lr"),
                       (lambda: FusedSGD(p, l1=float("nan")), "l1"),
                       (lambda: FusedSGD(p, momentum=0.0, nesterov=True), "nesterov"),
                       (lambda: FusedAdamW(p, betas=(0.9, 1.0)), "betas[1]"),
                       (lambda: FusedAdamW(p, l2="x"), "l2"),
                       (lambda: FusedAdamW(p, sqrt="fast"), "sqrt")]:
        with pytest.raises(RegbenchError, match=what.replace("[", r"\[")):
            make()


# --- the regularizers' fused backend ------------------------------------------------------


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))


def _train(model: nn.Module, opt: torch.optim.Optimizer, penalty=None, before_step=None,  # noqa: ANN001
           steps: int = 5) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 10, generator=g)
        y = torch.randint(0, 3, (16,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        if penalty is not None:
            loss = loss + penalty(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step(decay_params(model)[0])
        opt.step()
    return model


@pytest.mark.parametrize("reg", ["l2", "l1"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_fused_penalty_trains_as_the_loss_penalty(reg, opt_name) -> None:
    """`backend = "fused"` == the reference composition bitwise; == the native penalty in the
    loss up to rounding (autograd's gradient of the penalty rounds differently and is summed
    into the loss gradient): 5 steps, max |diff| <= 1e-5 (SGD) / 1e-4 (Adam, whose update
    divides by sqrt(v) and so magnifies 1-ulp gradient differences where v is small)."""
    from regbench.registry import REGULARIZERS
    from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec

    lam = 1e-2
    spec = RegSpec(reg, lam, (("backend", "fused"),))
    cell = Cell(TaskSpec("curve"), ArchSpec("mlp"), spec, 0)
    cfg = OptimConfig(opt_name, 0.05 if opt_name == "sgd" else 1e-2, 0.9 if opt_name == "sgd"
                      else 0.0)
    r = REGULARIZERS.get(reg)(spec, cell)
    r.configure_optimizer(cfg, 1e-3)
    assert cfg.fused and (cfg.l2 if reg == "l2" else cfg.l1) == lam
    assert r.penalty(_model()) is None
    m_fused = _model()
    _train(m_fused, make_optimizer(m_fused, cfg))
    # reference composition: torch.optim on the weight group after reference elastic net
    m_ref = _model()
    native_cfg = OptimConfig(cfg.name, cfg.lr, cfg.momentum)
    l2, l1 = (lam, 0.0) if reg == "l2" else (0.0, lam)
    torch_opt = make_optimizer(m_ref, native_cfg)
    for grp in torch_opt.param_groups:
        grp["foreach"] = False
    _train(m_ref, torch_opt, before_step=lambda ws: KR.elastic_net_(ws, l2, l1))
    assert _same(list(m_fused.parameters()), list(m_ref.parameters()))
    # native backend: the penalty in the loss
    native = REGULARIZERS.get(reg)(RegSpec(reg, lam), cell)
    m_nat = _model()
    _train(m_nat, make_optimizer(m_nat, native_cfg), penalty=native.penalty)
    tol = 1e-5 if opt_name == "sgd" else 1e-4
    diff = max((a - b).abs().max().item()
               for a, b in zip(m_fused.parameters(), m_nat.parameters()))
    assert diff <= tol


@pytest.mark.parametrize("reg,opt_name", [("weight_decay", "sgd"), ("weight_decay", "adam"),
                                          ("adamw", "adam")])
def test_fused_decay_is_bitwise_torch(reg, opt_name) -> None:
    from regbench.registry import REGULARIZERS
    from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec

    def build(backend: str) -> tuple[nn.Module, torch.optim.Optimizer]:
        spec = RegSpec(reg, 1e-2, (("backend", backend),))
        cfg = OptimConfig(opt_name, 0.05, 0.9 if opt_name == "sgd" else 0.0)
        REGULARIZERS.get(reg)(spec, Cell(TaskSpec("curve"), ArchSpec("mlp"), spec, 0)
                              ).configure_optimizer(cfg, 1e-3)
        m = _model()
        opt = make_optimizer(m, cfg)
        for grp in opt.param_groups:
            grp["foreach"] = False
        return m, opt

    (m1, o1), (m2, o2) = build("fused"), build("native")
    assert type(o1).__name__.startswith("Fused") and not type(o2).__name__.startswith("Fused")
    _train(m1, o1)
    _train(m2, o2)
    assert _same(list(m1.parameters()), list(m2.parameters()))


def test_make_optimizer_fused_groups_and_errors() -> None:
    m = _model()
    opt = make_optimizer(m, OptimConfig("sgd", 0.1, fused=True, l1=1e-3, l2=1e-2,
                                        weight_decay=1e-4))
    w, b = opt.param_groups
    assert (w["l1"], w["l2"], w["weight_decay"]) == (1e-3, 1e-2, 1e-4)
    assert (b["l1"], b["l2"], b["weight_decay"]) == (0.0, 0.0, 0.0)
    assert set(FUSED) == {"sgd", "adam", "adamw"}
    with pytest.raises(RegbenchError, match="fused"):
        make_optimizer(m, OptimConfig("sgd", 0.1, l2=1e-2))
    with pytest.raises(RegbenchError, match="valid choices"):
        make_optimizer(m, OptimConfig("lbfgs", 0.1, fused=True))


def test_reference_module_is_torch_single_tensor() -> None:
    """R.sgd_step_ / R.adamw_step_ (the fallback) leave grads alone and equal torch.optim."""
    ps, gss = _data(torch.float32, steps=1, sizes=(50,))
    p1, p2 = ps[0].clone(), ps[0].clone().requires_grad_()
    g = gss[0][0].clone()
    buf = torch.empty(50)
    R.sgd_step_([p1], [g], [buf], lr=0.1, momentum=0.9, dampening=0.0, nesterov=False,
                weight_decay=1e-2, l2=0.0, l1=0.0, init_bufs=True)
    assert torch.equal(g, gss[0][0])
    p2.grad = g.clone()
    t = torch.optim.SGD([p2], lr=0.1, momentum=0.9, weight_decay=1e-2, foreach=False)
    t.step()
    assert torch.equal(p1, p2) and torch.equal(buf, t.state[p2]["momentum_buffer"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_agrees_with_torch_fused_kernels(dtype) -> None:
    """torch's own fused=True CPU Adam kernel uses IEEE sqrt: FusedAdamW / FusedAdam with
    sqrt="ieee" equal it bitwise (same op order, same FMAs). (SGD(fused=True) differs from
    torch's single-tensor SGD, which FusedSGD follows, in a few fp32 elements: not checked.)"""
    if not any(b in BACKENDS for b in ("avx512", "avx2", "scalar")):
        pytest.skip("C++ kernels not built")
    ps, gss = _data(dtype)
    cases = [
        (lambda q: FusedAdamW(q, lr=1e-2, weight_decay=0.1, sqrt="ieee"),
         lambda q: torch.optim.AdamW(q, lr=1e-2, weight_decay=0.1, fused=True)),
        (lambda q: FusedAdam(q, lr=1e-2, weight_decay=0.1, sqrt="ieee"),
         lambda q: torch.optim.Adam(q, lr=1e-2, weight_decay=0.1, fused=True)),
    ]
    for ours, theirs in cases:
        assert _same(_run(ours, ps, gss)[0], _run(theirs, ps, gss)[0])
