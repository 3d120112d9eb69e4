"""FID pipeline throughput: feature extraction in large batches vs one image at a time, and
the eigendecomposition Frechet distance vs pytorch-fid's ``scipy.linalg.sqrtm`` route."""
from __future__ import annotations

import time

import numpy as np


def _network():
    """The real Inception network when the extra and weights are there, else a stand-in."""
    import torch
    from disbench.errors import DisbenchError
    from disbench.metrics.inception import load_inception

    try:
        return load_inception(), "InceptionV3 pool3"
    except DisbenchError:
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 5, stride=2), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return net.to(device), "stand-in conv net (no Inception weights)"


def _rate(fn, n: int, repeats: int = 3) -> float:
    """Images/s of the fastest of ``repeats`` timed passes (after one warm-up): the minimum
    is the figure least disturbed by other work on a shared machine."""
    import torch

    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _best_time(fn, repeats: int = 3):
    """(result, fastest of ``repeats`` wall times)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run(quick: bool) -> list[dict]:
    import scipy.linalg
    from disbench.metrics.fid import frechet_distance
    from disbench.metrics.inception import inception_features

    rows = []
    net, what = _network()
    real = what.startswith("Inception")
    on_gpu = next(net.parameters()).is_cuda
    n = (8 if quick else 64) if (real and not on_gpu) else (16 if quick else 256)
    images = np.random.default_rng(0).integers(0, 256, (n, 1, 28, 28)).astype(np.uint8)
    big = min(n, 64)
    one = _rate(lambda: inception_features(images, network=net, batch_size=1), n)
    many = _rate(lambda: inception_features(images, network=net, batch_size=big), n)
    rows.append({"name": f"features, batch {big} vs 1 ({n} images)", "baseline": one,
                 "value": many, "unit": "img/s", "ratio": many / one,
                 "note": f"{what} on {'cuda' if on_gpu else 'cpu'}, incl. resize to 299"})

    d = 256 if quick else 2048
    rng = np.random.default_rng(1)
    a = rng.standard_normal((d + 100, d))
    b = rng.standard_normal((d + 100, d)) @ (np.eye(d) + 0.1 * rng.standard_normal((d, d)))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mu = np.zeros(d)

    def scipy_route() -> float:
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        return float(np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)

    ref, t_scipy = _best_time(scipy_route)
    ours, t_ours = _best_time(lambda: frechet_distance(mu, s1, mu, s2))
    rows.append({"name": f"frechet_distance {d}-d: eigh vs scipy sqrtm", "baseline": t_scipy,
                 "value": t_ours, "unit": "s", "ratio": t_scipy / t_ours,
                 "note": f"rel. diff {abs(ours - ref) / abs(ref):.1e}"})
    return rows
