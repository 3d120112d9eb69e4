"""UDR across runs: score the seeds of each variant against each other, into their metrics.

Unsupervised Disentanglement Ranking (:func:`disbench.metrics.udr`) is a score of a group of
models, so it cannot be computed by :func:`disbench.run.evaluate.evaluate_run`, which sees one
run. :func:`compute_udr` (``disbench udr RUNS_DIR``)

1. finds the trained runs under ``RUNS_DIR`` (optionally only those of a spec) and groups them
   by variant: runs whose stored configurations agree on everything but the seed (and the
   settings that do not change what is learned, :data:`disbench.run.config.NOT_HASHED`);
2. for each group of at least two runs, draws one shared set of observations from the
   variant's dataset as disentanglement_lib's ``udr/metrics/udr.py``
   (``_generate_representation_dataset``: batches of :data:`SAMPLE_BATCH` =
   ``udr_sklearn.batch_size=10`` of ``sample_factors`` then
   ``sample_observations_from_factors``, from ``np.random.RandomState(random_state)`` as
   ``udr/evaluate.py``; :data:`NUM_POINTS` = 1,000 and seed 0 as
   ``config/tests/methods/udr/udr.gin``, the reference's only configuration);
3. encodes it with every run's ``posterior(x) -> (mean, logvar)``: the representation is the
   mean, each latent's KL its mean over the points of
   ``0.5 (mean^2 + exp(logvar) - logvar - 1)`` (the reference's ``compute_gaussian_kl``; the
   mean over equal batches of 10 is the mean over all points);
4. calls :func:`disbench.metrics.udr` with its defaults (Lasso, ``filter_low_kl``, threshold
   0.01) and writes each run's ``model_scores`` entry as the record ``udr`` into its
   ``metrics.json``, holding the run's lock (:mod:`disbench.run.lock`) while the file is merged
   (:func:`disbench.run.evaluate.merge_metrics`, the same merge as ``disbench evaluate``).

A variant with one trained run, a model without ``posterior``, a dataset without factors or a
model whose latents all have KL <= 0.01 gets no score; :class:`UDRGroup` says why.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from disbench.errors import DisbenchError, check_random_state, resolve_device
from disbench.run.config import NOT_HASHED
from disbench.run.folder import RunFolder, find_run_folders, load_run

log = logging.getLogger(__name__)

__all__ = ["NUM_POINTS", "SAMPLE_BATCH", "UDRGroup", "compute_udr", "posterior_codes",
           "shared_draw", "variant_groups"]

#: ``udr_sklearn.num_data_points`` of ``config/tests/methods/udr/udr.gin``.
NUM_POINTS = 1000
#: ``udr_sklearn.batch_size`` of the same file: observations are drawn in batches of this size.
SAMPLE_BATCH = 10
#: What the score's options record besides the draw (the defaults of :func:`disbench.metrics.udr`).
UDR_SETTINGS = {"correlation": "lasso", "filter_low_kl": True, "kl_filter_threshold": 0.01}


@dataclass
class UDRGroup:
    """One variant's runs and what :func:`compute_udr` did with them.

    Attributes
    ----------
    runs : list of str
        The run folders of the variant (its trained seeds), in path order.
    scores : list of float
        Each run's ``udr`` (empty when none was computed).
    reason : str
        Why no score was computed ("" when ``scores`` holds them).
    """

    runs: list[str]
    scores: list[float] = field(default_factory=list)
    reason: str = ""


def _variant_key(folder: RunFolder) -> str:
    """The stored configuration without the seed and the settings outside the run id."""
    d = folder.run_config().to_dict()
    for k in ("seed", *NOT_HASHED):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=str)


def _trained(folder: RunFolder) -> bool:
    if folder.status() is None and folder.has_checkpoint():
        folder.refresh_status()  # a folder from before status files: read its checkpoint once
    return folder.is_trained()


def variant_groups(folders: list[RunFolder]) -> list[list[RunFolder]]:
    """The trained runs of ``folders`` grouped by variant (groups in order of first run)."""
    groups: dict[str, list[RunFolder]] = {}
    for folder in folders:
        if folder.has_config() and _trained(folder):
            groups.setdefault(_variant_key(folder), []).append(folder)
    return list(groups.values())


def shared_draw(dataset: Any, num_points: int, random_state: Any) -> np.ndarray:
    """uint8 observations (num_points, ...) drawn as the reference, in batches of 10."""
    rng = check_random_state(random_state)
    out = []
    for start in range(0, num_points, SAMPLE_BATCH):
        factors = dataset.sample_factors(min(SAMPLE_BATCH, num_points - start), rng)
        out.append(np.asarray(dataset.sample_observations_from_factors(factors, rng)))
    return np.concatenate(out, axis=0)


def posterior_codes(model: Any, images: np.ndarray, device: Any,
                    batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(posterior means (N, D), mean KL per latent (D,)) of uint8 ``images``, float64."""
    import torch

    means, kls = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).to(device).float() / 255.0
            mean, logvar = (t.double().cpu().numpy() for t in model.posterior(x))
            means.append(mean)
            kls.append(0.5 * (np.square(mean) + np.exp(logvar) - logvar - 1.0))
    return np.concatenate(means), np.concatenate(kls).mean(axis=0)


def compute_udr(
    runs_dir: str | os.PathLike,
    *,
    only: Any = None,
    num_points: int = NUM_POINTS,
    random_state: int = 0,
    device: Any = None,
    batch_size: int = 256,
) -> list[UDRGroup]:
    """UDR of every variant's trained seeds under ``runs_dir``, written into their metrics.

    Parameters
    ----------
    runs_dir : path
        A folder of runs (e.g. a sweep's ``--out``).
    only : set of paths, optional
        Keep just these run folders (``Spec.run_dirs``: the runs of one spec).
    num_points : int
        Shared observations (reference 1,000).
    random_state : int
        Seed of the draw (reference 0).
    device : str or None
        Where to encode (None: CUDA when present, else the CPU; it does not change a score).
    batch_size : int
        Images per ``posterior`` call (does not change a score).

    Returns
    -------
    list of :class:`UDRGroup`, one per variant with a trained run.
    """
    for name, v in (("--num-points", num_points), ("--batch-size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise DisbenchError(f"{name} must be an integer >= 2, got {v!r}")
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) \
            or random_state < 0:
        raise DisbenchError(f"--random-state must be a non-negative int seed, got {random_state!r}")
    dev = resolve_device(device, "--device")
    results = []
    for group in variant_groups(find_run_folders(runs_dir, only)):
        res = UDRGroup([str(f.path) for f in group])
        if len(group) < 2:
            res.reason = "one trained seed; UDR compares at least two"
        else:
            _score_group(group, res, int(num_points), int(random_state), dev, int(batch_size))
        results.append(res)
    return results


def _score_group(group: list[RunFolder], res: UDRGroup, num_points: int, random_state: int,
                 device: Any, batch_size: int) -> None:
    """Draw, encode, score and write one variant's runs (``res.reason`` when it cannot)."""
    from disbench import metrics
    from disbench.run.evaluate import _dataset

    codes, kls, dataset, data_spec, images = [], [], None, None, None
    for folder in group:
        model, _cfg, spec = load_run(folder.path, device=device)
        if not hasattr(model, "posterior"):
            res.reason = f"{type(model).__name__} has no posterior(x) -> (mean, logvar)"
            return
        if dataset is None:
            dataset, data_spec = _dataset(folder, spec), spec
            if not hasattr(dataset, "sample_factors"):
                res.reason = f"{spec['name']} is not a ground-truth dataset (no sample_factors)"
                return
            images = shared_draw(dataset, num_points, random_state)
        mean, kl = posterior_codes(model, images, device, batch_size)
        codes.append(mean)
        kls.append(kl)
    try:
        out = metrics.udr(codes, np.stack(kls), random_state=random_state, **UDR_SETTINGS)
    except ValueError as exc:  # e.g. a model whose latents all collapsed (KL <= 0.01)
        res.reason = str(exc)
        return
    res.scores = [float(s) for s in out["model_scores"]]
    _write(group, res.scores, dataset, data_spec, num_points, random_state, device)


def _write(group: list[RunFolder], scores: list[float], dataset: Any, data_spec: dict,
           num_points: int, random_state: int, device: Any) -> None:
    """Merge each run's ``udr`` record into its ``metrics.json`` under the run's lock."""
    from disbench.metrics import HIGHER_IS_BETTER
    from disbench.run.evaluate import _provenance, merge_metrics
    from disbench.run.lock import try_lock, wait_lock

    ids = [f.run_id() for f in group]
    options = {"num_points": num_points, "random_state": random_state, "codes": "mean",
               **UDR_SETTINGS, "runs": ids}
    spec = {"dataset": data_spec["name"], "source": getattr(dataset, "source", None),
            "fingerprint": getattr(dataset, "fingerprint", None), "codes": "mean",
            "seed": random_state, "points": num_points, "models": len(group), "runs": ids,
            "correlation": "lasso (alpha=0.1) of standardised means, latents with KL <= 0.01 "
                           "zeroed and filtered", "kl": "mean Gaussian KL to N(0, I)"}
    spec = {k: v for k, v in spec.items() if v is not None}
    for folder, score in zip(group, scores, strict=True):
        record = {"metric": "udr", "value": score, "version": "1", "spec": spec,
                  "higher_is_better": HIGHER_IS_BETTER["udr"]}
        lock = try_lock(folder.path)
        if lock is None:
            log.info("%s: waiting for the run's lock (another process holds it)", folder.path)
            lock = wait_lock(folder.path)
        with lock:
            merge_metrics(folder, [record], ["udr"], options,
                          _provenance(folder, dataset, data_spec, options, device))
