"""Training throughput: a plain loop vs batched ensembles of K models (issue 8).

The baseline is the straightforward loop: one beta-VAE (Locatello et al. 2019 conv
architecture, 64x64x1), Adam, batch 64, the dataset already on the device as uint8,
batches indexed there. The ensembles train K such models at once
(:class:`disbench.run.ensemble.Ensemble`), each on its own batches of 64. The figure is
aggregate images per second; the ratio is against the plain loop measured in the same
run. bf16 autocast and ``torch.compile`` of the plain loop are measured beside it.

The "CUDA graph" rows use :class:`disbench.run.graph_step.GraphedStep`: every member's batch
indices and noise drawn in one call each into fixed buffers, and the whole update (forward,
backward, Adam) replayed as one captured graph. "fixed buffers (eager)" is the same step
without the graph (the CPU form).

On the CPU the rows of :mod:`disbench.perf.cpu_train` follow: allocator settings, threads
per process against processes per core, ``channels_last``, ``torch.compile`` and
inference-mode encoding, each against the plain loop (one thread) in fresh processes.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from disbench import baselines
from disbench.perf import cpu_train
from disbench.run.ensemble import Ensemble
from disbench.run.graph_step import GraphedStep

BATCH = 64


def _data(device: torch.device, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.9).to(torch.uint8).mul(255).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _plain(device, data, steps, warmup, amp=False, compile_=False) -> float:
    torch.manual_seed(0)
    model = baselines.create("beta_vae", image_shape=(1, 64, 64)).to(device)
    if amp:
        model.amp_dtype = torch.bfloat16
    if compile_:
        for child in model.children():
            child.compile()
    opts = model.make_optimizers()
    gen = torch.Generator(device=device).manual_seed(0)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        idx = torch.randint(len(data), (BATCH,), generator=gen, device=device)
        model.train_step_tensors(data[idx].float().div(255.0), i, opts)
    _sync(device)
    return steps * BATCH / (time.perf_counter() - t0)


def _members(device, k, amp):
    models = []
    for s in range(k):
        torch.manual_seed(s)
        m = baselines.create("beta_vae", image_shape=(1, 64, 64), beta=float(1 + s % 8))
        m = m.to(device)
        if amp:
            m.amp_dtype = torch.bfloat16
        models.append(m)
    return models


def _graphed(device, data, k, steps, warmup, amp=False, graph=True, exact=False) -> float:
    models = _members(device, k, amp)
    gens = [torch.Generator(device=device).manual_seed(1000 + s) for s in range(k)]
    ens = Ensemble(models, None, gens, vary=["beta"])
    if exact:  # each member its own batch and noise generator (the sweep's path)
        batch_gen = [torch.Generator(device=device).manual_seed(s) for s in range(k)]
        noise_gen = gens
    else:
        batch_gen = torch.Generator(device=device).manual_seed(0)
        noise_gen = torch.Generator(device=device).manual_seed(1)
    step = GraphedStep(ens, data, BATCH, batch_gen, noise_gen, graph=graph)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        step()
    _sync(device)
    return steps * BATCH * k / (time.perf_counter() - t0)


def _ensemble(device, data, k, steps, warmup, amp=False) -> float:
    models = _members(device, k, amp)
    gens = [torch.Generator(device=device).manual_seed(1000 + s) for s in range(k)]
    ens = Ensemble(models, None, gens, vary=["beta"])
    batch_gens = [torch.Generator(device=device).manual_seed(s) for s in range(k)]
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        idx = torch.stack([torch.randint(len(data), (BATCH,), generator=g, device=device)
                           for g in batch_gens])
        ens.step(data[idx].float().div(255.0), i)
    _sync(device)
    return steps * BATCH * k / (time.perf_counter() - t0)


def run(quick: bool = False) -> Iterator[dict]:
    """Yield rows as they are measured (a failure late on keeps the earlier figures)."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
        data = _data(device, 20_000)
        steps, warmup = (50, 10) if quick else (200, 20)
        ks = (8, 16, 32) if not quick else (8,)
        where = torch.cuda.get_device_name()
    else:
        data = _data(device, 2_000)
        steps, warmup = (3, 1) if quick else (10, 2)
        ks = (2, 4)
        where = "cpu"
    base = _plain(device, data, steps, warmup)
    yield ({"name": f"train plain loop b{BATCH} ({where})", "baseline": base, "value": base,
                 "unit": "img/s", "ratio": 1.0, "note": "beta_vae 64x64, eager fp32"})
    if cuda:
        for label, kw in (("bf16", {"amp": True}), ("bf16+compile", {"amp": True,
                                                                       "compile_": True})):
            try:
                v = _plain(device, data, steps, warmup * 3 if "compile" in label else warmup,
                           **kw)
                yield ({"name": f"train plain loop b{BATCH} {label}", "baseline": base,
                             "value": v, "unit": "img/s", "ratio": v / base, "note": ""})
            except Exception as exc:  # noqa: BLE001 -- report it, don't abort the benchmark
                yield ({"name": f"train plain loop {label}", "baseline": base,
                             "value": None, "unit": "img/s", "ratio": None,
                             "note": f"failed: {type(exc).__name__}"})
    for k in ks:
        v = _ensemble(device, data, k, steps, warmup)
        yield ({"name": f"train ensemble K={k} b{BATCH} each", "baseline": base,
                     "value": v, "unit": "img/s", "ratio": v / base,
                     "note": "vmap over stacked params, own batches/Adam/noise per member"})
    if cuda:
        for k in ks[-1:]:
            v = _ensemble(device, data, k, steps, warmup, amp=True)
            yield ({"name": f"train ensemble K={k} b{BATCH} each, bf16", "baseline": base,
                         "value": v, "unit": "img/s", "ratio": v / base, "note": ""})
        for k in (32, 64) if not quick else (32,):
            for amp in (False, True):  # the graph rows' step without the graph
                yield _graph_row(device, data, k, steps, warmup, amp, base, graph=False)
        graph_rows = [(1, False), (8, False), (32, False), (64, False), (128, False),
                      (32, True), (64, True), (128, True)]
        for k, amp in graph_rows if not quick else [(32, False)]:
            yield _graph_row(device, data, k, steps, warmup, amp, base)
        for k in (32, 64) if not quick else (32,):
            yield _graph_row(device, data, k, steps, warmup, False, base, exact=True)
    else:
        yield _graph_row(device, data, ks[-1], steps, warmup, False, base, graph=False)
        yield from cpu_train.rows(quick)  # allocator, threads, layout, compile (issue 20)
        yield ({"name": "train (GPU parts)", "baseline": None, "value": None, "unit": "",
                     "ratio": None, "note": "skipped: no CUDA device"})


def _graph_row(device, data, k, steps, warmup, amp, base, graph=True, exact=False) -> dict:
    name = (f"train ensemble K={k} b{BATCH} each, "
            + ("CUDA graph" if graph else "fixed buffers (eager)") + (", bf16" if amp else "")
            + (", own draws" if exact else ""))
    try:
        v = _graphed(device, data, k, steps, warmup, amp=amp, graph=graph, exact=exact)
    except Exception as exc:  # noqa: BLE001 -- report it, don't abort the benchmark
        return {"name": name, "baseline": base, "value": None, "unit": "img/s",
                "ratio": None, "note": f"failed: {type(exc).__name__}: {exc}"[:200]}
    return {"name": name, "baseline": base, "value": v, "unit": "img/s", "ratio": v / base,
            "note": ("each member's own draws" if exact else "one draw per step")
                    + " into fixed buffers"
                    + ("; forward+backward+Adam replayed as one graph" if graph else "")}
