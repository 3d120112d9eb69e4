"""Hoyer sparsity of a representation.

Mathieu, Rainforth, Siddharth & Teh 2019, "Disentangling Disentanglement in Variational
Autoencoders" (ICML), Sec. 5 / Eq. 10, after Hoyer 2004 ("Non-negative matrix factorization
with sparseness constraints", JMLR): each code dimension is divided by its standard deviation
over the data (no centring, ddof 0), then per sample

    Hoyer(z) = (sqrt(D) - ||z||_1 / ||z||_2) / (sqrt(D) - 1)

which is 1 for a one-hot vector and 0 for a vector with equal magnitudes; the score is the mean
over samples. Higher is sparser. Conventions: an all-zero sample scores 0; a dimension with zero
std is left unscaled.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["hoyer_per_sample", "hoyer_sparsity"]


def hoyer_per_sample(z: Any) -> np.ndarray | float:
    """Hoyer measure of each row of ``z`` (N, D) (an array), or of one vector (D,) (a float).

    No per-dimension scaling is applied here; :func:`hoyer_sparsity` does that first.
    """
    arr = np.asarray(z.detach().cpu().numpy() if hasattr(z, "detach") else z, dtype=np.float64)
    single = arr.ndim == 1
    x = check_codes(arr[None] if single else arr, "z")
    d = x.shape[1]
    if d < 2:
        raise ValueError("z: the Hoyer measure needs at least 2 dimensions")
    l1 = np.abs(x).sum(axis=1)
    l2 = np.sqrt((x * x).sum(axis=1))
    ratio = np.divide(l1, l2, out=np.full_like(l1, np.sqrt(d)), where=l2 > 0)
    h = (np.sqrt(d) - ratio) / (np.sqrt(d) - 1.0)
    return float(h[0]) if single else h


def hoyer_sparsity(codes: Any) -> float:
    """Mean Hoyer sparsity of codes (N, D) after dividing each dimension by its std.

    Returns
    -------
    float in [0, 1]; higher is better (sparser).
    """
    c = check_codes(codes, "codes", min_samples=2).astype(np.float64)
    if c.shape[1] < 2:
        raise ValueError("codes: the Hoyer measure needs at least 2 code dimensions")
    std = c.std(axis=0)
    c = c / np.where(std > 0, std, 1.0)
    return float(np.mean(hoyer_per_sample(c)))



@register_evaluator("hoyer", records=[Record("hoyer", higher_is_better=True, tolerance=0.03)],
                    needs=("factors", "encoder"))
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``hoyer`` of the train codes."""
    codes, _ = ctx.train_points()
    return [ctx.record("hoyer", hoyer_sparsity(codes), version="1", points=ctx.num_train)]


@register_evaluator("hoyer_test",
                    records=[Record("hoyer_test", higher_is_better=True, tolerance=0.03)],
                    needs=("images", "encoder", "load_dataset"))
def _evaluate_test(ctx: EvalContext) -> list[dict]:
    """``hoyer_test``: Hoyer sparsity of the posterior means of the dataset's ``test`` split.

    The protocol of the authors' ``src/analyse.py --sparsity`` (iffsid/disentangling-
    disentanglement): ``compute_sparsity(zs_mean, norm=True)`` over the test loader's
    encodings (``compute_sparsity`` in ``src/metrics.py`` divides by the unbiased std; the
    score does not depend on that choice, a common factor of all dimensions). The split is
    loaded with ``ctx.load`` (same dataset and source); at most ``num_test`` images, a sorted
    random subset drawn from the stream ``"hoyer_test"`` when the split is larger.
    """
    ds = ctx.dataset
    test = ds if getattr(ds, "split", None) == "test" else \
        ctx.load(ds.name, source=ds.source, split="test")
    n = len(test.images)
    idx = np.arange(n) if ctx.num_test >= n else \
        np.sort(ctx.rng("hoyer_test").choice(n, size=ctx.num_test, replace=False))
    codes = ctx.encode(np.asarray(test.images[idx]))
    return [ctx.record("hoyer_test", hoyer_sparsity(codes), version="1", points=len(idx),
                       split="test", test_fingerprint=getattr(test, "fingerprint", None))]
