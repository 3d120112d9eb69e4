"""CPU training throughput: settings measured against the plain loop (issue 20).

Each measurement runs in a fresh process (``python -m disbench.perf.cpu_train``), because
allocator settings, a preloaded allocator and thread counts are per process and cannot be
undone in one. The process trains the 64x64 beta-VAE (Locatello et al. 2019 conv
encoder/decoder, Adam, batch 64) on dSprites twin images drawn as the trainer draws them
(:class:`disbench.run.draws.BatchSampler`, the CPU path: sorted indices into a uint8 numpy
array, float / 255) and prints one JSON line: images/s over the timed steps, the wall-clock
interval, and a digest of every step's loss terms and of the final weights (equal digests:
bit-identical training).

Variants (joined with ``+``): ``plain`` (today's loop), ``mallopt``
(:func:`disbench.run.cpu_tuning.tune_cpu`), ``channels_last`` (model and batches in
channels-last memory format), ``compile`` (``Module.compile`` of the encoder and decoder,
as ``--compile`` does). With ``--encode`` the process instead encodes evaluation points
in batches of 256 (the default evaluation batch) under ``torch.no_grad`` (today's path in
:meth:`disbench.metrics.evaluators.EvalContext.encode`) or ``torch.inference_mode``.
A preloaded allocator (jemalloc, tcmalloc) is given by the parent through ``LD_PRELOAD``,
OpenMP's wait policy through ``OMP_WAIT_POLICY`` (unset, OpenMP's default, unless a row
sets it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 64
N_IMAGES = 4096


class _Images:
    """The CPU face of a dataset for :class:`BatchSampler`: a uint8 array and its length."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)


def twin_images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` dSprites twin images (uint8 0/255, (n, 1, 64, 64)) of uniformly drawn factors."""
    from disbench.datasets import dsprites as dsp

    rng = np.random.RandomState(seed)
    sizes = dsp.DSprites.factor_sizes
    factors = np.stack([rng.randint(0, s, n) for s in sizes], axis=1)
    return dsp.render(factors)


def _model(variants: set[str]) -> Any:
    import torch
    from disbench import baselines
    from disbench.run.draws import seed_everything

    seed_everything(0)
    model = baselines.create("beta_vae", image_shape=(1, 64, 64))
    if "channels_last" in variants:
        model = model.to(memory_format=torch.channels_last)
    if "compile" in variants:
        for child in model.children():
            child.compile()
    return model


class _Digest:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def add(self, tensors: Any) -> None:
        for t in tensors:
            self.h.update(t.detach().contiguous().numpy().tobytes())

    def hex(self) -> str:
        return self.h.hexdigest()[:16]


def _barrier(folder: str | None, peers: int) -> None:
    """Wait until ``peers`` processes have reached this point (files in ``folder``)."""
    if not folder:
        return
    Path(folder, str(os.getpid())).touch()
    while len(list(Path(folder).iterdir())) < peers:
        time.sleep(0.005)


def train(variants: set[str], steps: int, warmup: int, barrier: str | None, peers: int
          ) -> dict[str, Any]:
    """Train ``warmup + steps`` steps; images/s over the last ``steps``."""
    import torch
    from disbench.run.draws import BatchSampler

    sampler = BatchSampler(_Images(twin_images(N_IMAGES)), BATCH, torch.device("cpu"), 0)
    model = _model(variants)
    opts = model.make_optimizers()
    model.train()
    digest = _Digest()
    first = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            _barrier(barrier, peers)
            t0, wall0, cpu0, faults0 = (time.perf_counter(), time.time(), time.process_time(),
                                        _minor_faults())
        x = sampler.next()
        if "channels_last" in variants:
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = time.perf_counter()
        terms = model.scheduled_step(x, i, opts)
        if i == 0:
            first = time.perf_counter() - s0
        digest.add(terms[k] for k in sorted(terms))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    faults = _minor_faults() - faults0
    digest.add(p for _, p in sorted(model.state_dict().items()))
    return {"img_s": steps * BATCH / elapsed, "img_cpu_s": steps * BATCH / cpu,
            "faults_per_step": faults / steps, "start": wall0, "end": time.time(),
            "first_step_s": first, "step_s": elapsed / steps, "digest": digest.hex()}


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def encode(mode: str, n: int, reps: int) -> dict[str, Any]:
    """Encode ``n`` images ``reps`` times in batches of 256; images/s of the last ``reps - 1``."""
    import torch

    images = torch.from_numpy(twin_images(n, seed=1))
    model = _model(set())
    model.eval()
    ctx = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    digest = _Digest()
    for r in range(reps):
        if r == 1:
            t0 = time.perf_counter()
        with ctx():
            codes = [model.encode(images[s:s + 256].float() / 255.0) for s in range(0, n, 256)]
        if r == 0:
            digest.add(codes)
    elapsed = time.perf_counter() - t0
    return {"img_s": (reps - 1) * n / elapsed, "digest": digest.hex()}


# -- the parent's side ----------------------------------------------------------------------
def measure(variant: str = "plain", *, threads: int = 1, steps: int = 20, warmup: int = 3,
            preload: str | None = None, procs: int = 1, omp_passive: bool = False,
            cold_compile: bool = False, encode_mode: str | None = None,
            n_encode: int = 2048, timeout: float = 900) -> dict[str, Any]:
    """Run ``procs`` worker processes at once; their aggregate images/s and digests.

    With several processes the timed steps start together (a file barrier) and the rate
    is all their images over the interval from that start to the last one's end.
    ``omp_passive``: ``OMP_WAIT_POLICY=PASSIVE`` (else the variable is removed: OpenMP's
    default); ``cold_compile``: an empty ``torch.compile`` cache.
    """
    import tempfile

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if preload:
        env["LD_PRELOAD"] = preload
    cmd = [sys.executable, "-m", "disbench.perf.cpu_train", "--threads", str(threads),
           "--variant", variant]
    if encode_mode:
        cmd += ["--encode", encode_mode, "--n", str(n_encode), "--reps", str(warmup + 1)]
    else:
        cmd += ["--steps", str(steps), "--warmup", str(warmup)]
    with tempfile.TemporaryDirectory() as bar, tempfile.TemporaryDirectory() as cache:
        if cold_compile:
            env["TORCHINDUCTOR_CACHE_DIR"] = cache
        if procs > 1:
            cmd += ["--barrier", bar, "--peers", str(procs)]
        ps = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(procs)]
        outs = [p.communicate(timeout=timeout) for p in ps]
    for p, (_out, err) in zip(ps, outs, strict=True):
        if p.returncode != 0:
            last = (err.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"worker exited {p.returncode}: {last}"[:300])
    res = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    if procs == 1:
        return res[0]
    span = max(r["end"] for r in res) - min(r["start"] for r in res)
    return {"img_s": procs * steps * BATCH / span, "digest": res[0]["digest"],
            "digests": [r["digest"] for r in res], "each": [r["img_s"] for r in res]}


#: Debian's allocator libraries (packages libjemalloc2, libtcmalloc-minimal4, libgoogle-perftools4)
PRELOADS = {"jemalloc": ("libjemalloc.so.2",),
            "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")}


def find_preload(kind: str) -> str | None:
    """The path of a Debian package's allocator library, or None when not installed."""
    import glob

    for name in PRELOADS[kind]:
        for folder in ("/usr/lib/*-linux-gnu", "/usr/lib64", "/usr/lib"):
            hits = sorted(glob.glob(f"{folder}/{name}"))
            if hits:
                return hits[0]
    return None


#: (key, row label, measure() arguments, key of the run whose digest it should equal)
TRAIN_CONFIGS: list[tuple[str, str, dict[str, Any], str]] = [
    ("plain", "plain loop, 1 thread", {}, "plain"),
    ("mallopt", "mallopt thresholds, 1 thread", {"variant": "mallopt"}, "plain"),
    ("jemalloc", "jemalloc preloaded, 1 thread", {"preload": "jemalloc"}, "plain"),
    ("tcmalloc", "tcmalloc preloaded, 1 thread", {"preload": "tcmalloc"}, "plain"),
    ("cl", "channels_last, 1 thread", {"variant": "channels_last"}, "plain"),
    ("mallopt_cl", "mallopt + channels_last, 1 thread",
     {"variant": "mallopt+channels_last"}, "plain"),
    ("t2", "plain loop, 1 process x 2 threads", {"threads": 2}, "plain"),
    ("mallopt_t2", "mallopt, 1 process x 2 threads", {"variant": "mallopt", "threads": 2}, "t2"),
    ("passive_t2", "OMP_WAIT_POLICY=PASSIVE, 1 process x 2 threads",
     {"threads": 2, "omp_passive": True}, "t2"),
    ("kept_t2", "mallopt + PASSIVE (kept), 1 process x 2 threads",
     {"variant": "mallopt", "threads": 2, "omp_passive": True}, "t2"),
    ("p2", "plain loop, 2 processes x 1 thread", {"procs": 2}, "plain"),
    ("mallopt_p2", "mallopt, 2 processes x 1 thread", {"variant": "mallopt", "procs": 2},
     "plain"),
]


def rows(quick: bool = False) -> Iterator[dict[str, Any]]:
    """The CPU training rows: every setting against the plain loop, interleaved repeats.

    Each repeat measures every configuration once, in turn, so that a change in the load
    of a shared machine falls on all of them; the figures are medians over repeats.
    """
    reps, steps, warmup = (1, 5, 2) if quick else (5, 20, 3)
    configs, skipped = [], []
    for key, label, kw, ref in TRAIN_CONFIGS:
        if "preload" in kw:
            path = find_preload(kw["preload"])
            if path is None:
                skipped.append(_skip(label, f"skipped: no {kw['preload']} library (Debian "
                                            f"package {_PACKAGE[kw['preload']]})"))
                continue
            kw = {**kw, "preload": path}
        configs.append((key, label, kw, ref))
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in configs}
    for _ in range(reps):
        for key, _label, kw, _ref in configs:
            runs[key].append(_attempt(kw, steps, warmup))
    yield from (_train_row(runs, key, label, ref) for key, label, _kw, ref in configs)
    yield from skipped
    if not quick:
        yield _compile_row(runs, steps, warmup)
    yield from _encode_rows(reps, quick)


_PACKAGE = {"jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4"}


def _attempt(kw: dict[str, Any], steps: int, warmup: int) -> dict[str, Any]:
    try:
        return measure(steps=steps, warmup=warmup, **kw)
    except Exception as exc:  # noqa: BLE001 -- reported in the row, the benchmark goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}


def _skip(label: str, note: str) -> dict[str, Any]:
    return {"name": f"cpu train {label}", "baseline": None, "value": None, "unit": "img/s",
            "ratio": None, "note": note}


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if key in r]
    return float(np.median(vals)) if vals else None


def _train_row(runs: dict[str, list[dict[str, Any]]], key: str, label: str, ref: str
               ) -> dict[str, Any]:
    mine, base = runs[key], _median(runs["plain"], "img_s")
    errors = [r["error"] for r in mine if "error" in r]
    value = _median(mine, "img_s")
    if value is None or base is None:
        return _skip(label, f"failed: {errors[0] if errors else 'no baseline'}")
    digests = {d for r in mine for d in r.get("digests", [r.get("digest")]) if d}
    same = digests == {r["digest"] for r in runs[ref] if "digest" in r}
    note = [f"median of {len(mine) - len(errors)}", f"identical to {ref}: {same}"]
    if "img_cpu_s" in mine[0]:
        note.append(f"img per CPU-s {_median(mine, 'img_cpu_s'):.0f} "
                    f"(plain {_median(runs['plain'], 'img_cpu_s'):.0f})")
        note.append(f"page faults/step {_median(mine, 'faults_per_step'):.0f}")
    if key.endswith(("p2", "t2")):
        note.append(f"{value / 2:.0f} img/s per core")
    return {"name": f"cpu train {label}", "baseline": base, "value": value, "unit": "img/s",
            "ratio": value / base, "note": "; ".join(note)}


def _compile_row(runs: dict[str, list[dict[str, Any]]], steps: int, warmup: int
                 ) -> dict[str, Any]:
    """``torch.compile`` once (its first step compiles: minutes on a small CPU)."""
    label = "torch.compile (encoder, decoder), 1 thread"
    res = _attempt({"variant": "compile", "cold_compile": True}, steps, warmup)
    base = _median(runs["plain"], "img_s")
    if "error" in res or base is None:
        return _skip(label, f"failed: {res.get('error', 'no baseline')}")
    same = res["digest"] == runs["plain"][0].get("digest")
    return {"name": f"cpu train {label}", "baseline": base, "value": res["img_s"],
            "unit": "img/s", "ratio": res["img_s"] / base,
            "note": f"one run; first step (compiling, empty cache) {res['first_step_s']:.0f} s; "
                    f"identical to plain: {same}"}


def _encode_rows(reps: int, quick: bool) -> Iterator[dict[str, Any]]:
    """Encoding evaluation points: ``torch.inference_mode`` (and mallopt) vs ``no_grad``."""
    n = 512 if quick else 2048
    configs = [("no_grad", "plain"), ("inference_mode", "plain"), ("no_grad", "mallopt")]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in configs}
    for _ in range(reps):
        for mode, variant in configs:
            runs[(mode, variant)].append(_attempt(
                {"encode_mode": mode, "variant": variant, "n_encode": n}, 0, 2))
    base = _median(runs[configs[0]], "img_s")
    for mode, variant in configs:
        label = f"cpu encode {n} points, {mode}" + (" + mallopt" if variant != "plain" else "")
        mine = runs[(mode, variant)]
        value = _median(mine, "img_s")
        if value is None or base is None:
            errors = [r["error"] for r in mine if "error" in r]
            yield {**_skip("", ""), "name": label,
                   "note": f"failed: {errors[0] if errors else 'no baseline'}"}
            continue
        same = {r.get("digest") for r in mine} == {r.get("digest") for r in runs[configs[0]]}
        yield {"name": label, "baseline": base, "value": value, "unit": "img/s",
               "ratio": value / base, "note": f"batches of 256, 1 thread; median of "
                                              f"{len(mine)}; identical codes: {same}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m disbench.perf.cpu_train")
    parser.add_argument("--variant", default="plain")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--barrier", default=None)
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--encode", default=None, choices=["no_grad", "inference_mode"])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args(argv)
    variants = set(args.variant.split("+"))
    if "mallopt" in variants:  # first, before the allocations it is meant for
        from disbench.run.cpu_tuning import tune_cpu

        if not tune_cpu().applied:
            raise SystemExit(f"mallopt was not applied: {tune_cpu().reason}")
    import torch

    torch.set_num_threads(args.threads)
    if args.encode:
        out = encode(args.encode, args.n, args.reps)
    else:
        out = train(variants, args.steps, args.warmup, args.barrier, args.peers)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
