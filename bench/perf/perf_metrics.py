"""Metric speed: MIG vs the straightforward double loop; DCI serial vs parallel vs hist_gbt.

Setting of issue 3: N = 10,000 train points (5,000 test), 10 codes, 5 factors with dSprites'
sizes (3, 6, 40, 32, 32); ``quick`` uses N = 2,000. The codes are a synthetic, partly
disentangled representation (5 codes are noisy functions of one factor each with some mixing,
5 are noise), so that DCI's importances are neither trivial nor uniform.

Rows: MIG (baseline: discretise + ``sklearn.metrics.mutual_info_score`` in a double loop, as the
reference does); DCI with the reference GBT serially (baseline) vs ``n_jobs=-1``; and vs
``estimator="hist_gbt"``, whose note gives |D_hist - D_gbt| (goal: <= 0.05, >= 10x faster).
"""
from __future__ import annotations

import os
import time

import numpy as np

SIZES = (3, 6, 40, 32, 32)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, SIZES, size=(n, len(SIZES)))
    scaled = factors / (np.asarray(SIZES) - 1.0)
    mix = np.eye(5) + 0.15 * np.random.default_rng(123).normal(size=(5, 5))
    signal = np.tanh(2.0 * (scaled - 0.5)) @ mix + 0.05 * rng.normal(size=(n, 5))
    codes = np.concatenate([signal, rng.normal(size=(n, 5))], axis=1)
    return codes, factors


def _baseline_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    from sklearn.metrics import mutual_info_score

    disc = [np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in codes.T]
    m = np.array([[mutual_info_score(f, d) for f in factors.T] for d in disc])
    h = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def _cpu_timed(fn, *args, **kw):
    """(result, wall seconds, CPU seconds of this process): CPU time is robust to a busy machine
    for single-process work."""
    c0 = time.process_time()
    out, wall = _timed(fn, *args, **kw)
    return out, wall, time.process_time() - c0


def run(quick: bool) -> list[dict]:
    from disbench.metrics import dci, mig

    n = 2000 if quick else 10000
    codes, factors = _data(n, 0)
    codes_test, factors_test = _data(n // 2, 1)
    rows = []

    reps = 5
    base_val, t_base = _timed(lambda: [_baseline_mig(codes, factors) for _ in range(reps)])
    val, t_mig = _timed(lambda: [mig(codes, factors) for _ in range(reps)])
    rows.append({
        "name": f"mig N={n} D=10 K=5", "baseline": t_base / reps, "value": t_mig / reps,
        "unit": "s", "ratio": t_base / t_mig,
        "note": f"sklearn double loop; |diff|={abs(base_val[0] - val[0]):.1e}",
    })

    import torch

    if torch.cuda.is_available():
        # Codes already on the GPU (as after encoding there): bin and count on the device.
        big_c, big_f = _data(100_000, 2)
        c_dev = torch.from_numpy(big_c).cuda()
        mig(c_dev, big_f)  # warm-up
        ref, t_host = _timed(lambda: [mig(c_dev.cpu().numpy(), big_f) for _ in range(reps)])
        dev, t_dev = _timed(lambda: [mig(c_dev, big_f) for _ in range(reps)])
        rows.append({
            "name": "mig N=100000 codes on GPU: host numpy vs device", "baseline": t_host / reps,
            "value": t_dev / reps, "unit": "s", "ratio": t_host / t_dev,
            "note": f"|diff|={abs(ref[0] - dev[0]):.1e}",
        })
    else:
        rows.append({"name": "mig on the GPU", "baseline": None, "value": None, "unit": "",
                     "ratio": None, "note": "skipped: no CUDA device"})

    args = (codes, factors, codes_test, factors_test)
    serial, t_serial, cpu_serial = _cpu_timed(dci, *args, random_state=0)
    par, t_par = _timed(dci, *args, random_state=0, n_jobs=-1)
    rows.append({
        "name": f"dci gbt N={n}: serial vs n_jobs=-1", "baseline": t_serial, "value": t_par,
        "unit": "s", "ratio": t_serial / t_par,
        "note": f"{os.cpu_count()} cores; identical={serial == par}; D={serial['disentanglement']:.4f}",
    })
    hist, t_hist, cpu_hist = _cpu_timed(dci, *args, random_state=0, estimator="hist_gbt")
    diff = abs(hist["disentanglement"] - serial["disentanglement"])
    rows.append({
        "name": f"dci gbt serial vs hist_gbt N={n}", "baseline": t_serial, "value": t_hist,
        "unit": "s", "ratio": t_serial / t_hist,
        "note": f"|D_hist - D_gbt|={diff:.4f} (D_hist={hist['disentanglement']:.4f}, "
                f"C diff={abs(hist['completeness'] - serial['completeness']):.4f}); "
                f"CPU-time ratio {cpu_serial / cpu_hist:.1f}; goal <=0.05, >=10x",
    })
    return rows
