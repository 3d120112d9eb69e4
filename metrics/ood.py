"""Out-of-distribution (OoD) detection: ROC AUC of per-sample scores, and model scorers.

Convention (used everywhere in disbench): **a higher score means "more in-distribution"**,
and in-distribution samples are the positive class of the ROC analysis. A perfect detector
has AUROC 1, a detector that cannot tell the two sets apart 0.5 (Hendrycks & Gimpel,
"A baseline for detecting misclassified and out-of-distribution examples", ICLR 2017, use the
same AUROC; some papers use OoD as the positive class and an anomaly score -- the AUROC
is identical when both the class and the score sign are flipped).

Model scorers (``SCORERS``), each returning one score per image, higher = more in:

- ``"elbo"``: the per-sample ELBO ``model.elbo(x)`` of the VAE family (Kingma & Welling
  2014, Eq. 3); i.e. the negative ELBO is the anomaly score of Nalisnick et al., "Do deep
  generative models know what they don't know?", ICLR 2019;
- ``"prior_log_density"``: ``log p(z)`` of the encoded mean ``z = encode(x)`` under the
  model's (learned or structured) prior, for ab_vae's priors (Mathieu et al., "Disentangling
  disentanglement in variational autoencoders", ICML 2019);
- ``"critic"``: the GWAE critic f, the Kantorovich potential of the W1 critic between
  inference pairs (x, z) and generative pairs (Nakagawa et al., "Gromov-Wasserstein
  autoencoders", ICLR 2023), at ``(x, encode(x))``. disbench's gwae drives f *low* on data
  pairs, so the score is ``-f(x, encode(x))``, which is what ``model.ood_score(x)`` returns;
  the scorer uses ``ood_score`` when the model has it, else ``-critic(x, encode(x))``.

Scores that draw noise (the ELBO's posterior sample) are computed under
``torch.manual_seed(random_state)`` in a forked RNG, so a call is reproducible and leaves
the global RNG untouched; deterministic scores do not depend on ``batch_size``.

:func:`gwae_ood_protocol` is the ready-made GWAE evaluation: a model trained on MNIST,
in = MNIST test, out = Omniglot evaluation split at 28x28; the caller passes the dataset
loader (``disbench.datasets.get``), since metrics do not import the dataset package.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._device import module_device

__all__ = [
    "SCORERS",
    "RocCurve",
    "default_scorer",
    "gwae_ood_protocol",
    "ood_auroc",
    "ood_scores",
    "roc_curve",
]

log = logging.getLogger(__name__)

VERSION = "1"


# --------------------------------------------------------------------------- array layer
def _scores(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-sample scores, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; need at least one score")
    if not np.isfinite(arr).all():
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or inf values")
    return arr


def ood_auroc(scores_in: Any, scores_out: Any) -> float:
    """Area under the ROC curve for separating in- from out-of-distribution scores.

    In-distribution is the positive class; higher score = more in-distribution. Computed
    exactly as the Mann-Whitney statistic ``P(s_in > s_out) + 0.5 P(s_in = s_out)`` from
    average ranks (ties count one half), which equals the trapezoidal area under
    :func:`roc_curve`.

    Parameters
    ----------
    scores_in : array-like, shape (N_in,)
        Scores of in-distribution samples.
    scores_out : array-like, shape (N_out,)
        Scores of out-of-distribution samples.

    Returns
    -------
    float
        AUROC in [0, 1]; higher is better, 0.5 is chance.
    """
    from scipy.stats import rankdata

    s_in = _scores(scores_in, "scores_in")
    s_out = _scores(scores_out, "scores_out")
    ranks = rankdata(np.concatenate([s_in, s_out]))  # average ranks for ties
    n_in, n_out = s_in.size, s_out.size
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2.0
    return float(u / (n_in * n_out))


class RocCurve(NamedTuple):
    """ROC curve points: false/true positive rates at decreasing score thresholds."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def roc_curve(scores_in: Any, scores_out: Any) -> RocCurve:
    """ROC curve with in-distribution as the positive class (higher score = more in).

    Every distinct score is a threshold ``t`` (descending; the first is ``+inf`` so the curve
    starts at (0, 0)); ``tpr = #{s_in >= t} / N_in`` and ``fpr = #{s_out >= t} / N_out``.

    Returns
    -------
    RocCurve
        ``(fpr, tpr, thresholds)`` float64 arrays, ending at (1, 1).
    """
    s_in = _scores(scores_in, "scores_in")
    s_out = _scores(scores_out, "scores_out")
    scores = np.concatenate([s_in, s_out])
    positive = np.concatenate([np.ones(s_in.size), np.zeros(s_out.size)])
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    # last index of each run of equal scores: all samples >= that score are counted there
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(positive)[last]
    fps = (last + 1) - tps
    return RocCurve(
        fpr=np.r_[0.0, fps / s_out.size],
        tpr=np.r_[0.0, tps / s_in.size],
        thresholds=np.r_[np.inf, scores[last]],
    )



# --------------------------------------------------------------------------- model scorers
def _elbo(model: Any, x: Any) -> Any:
    return model.elbo(x)


def _prior_log_density(model: Any, x: Any) -> Any:
    logp = model.prior.log_prob(model.encode(x))
    # A factorised prior may return per-dimension log-densities: the joint is their sum.
    return logp.sum(dim=-1) if logp.dim() == 2 else logp


def _critic(model: Any, x: Any) -> Any:
    if hasattr(model, "ood_score"):
        return model.ood_score(x)
    return -model.critic(x, model.encode(x))  # f is low on data pairs: negate


SCORERS: dict[str, Callable[[Any, Any], Any]] = {
    "elbo": _elbo,
    "prior_log_density": _prior_log_density,
    "critic": _critic,
}


def default_scorer(model: Any) -> str:
    """The paper's OoD score for ``model``'s family.

    gwae -> ``"critic"``; a model with a prior that has ``log_prob`` (ab_vae) ->
    ``"prior_log_density"``; any other model with ``elbo`` (VAE family) -> ``"elbo"``.
    """
    from disbench.errors import DisbenchError

    name = getattr(model, "registry_name", type(model).__name__)
    if hasattr(model, "critic") and (name == "gwae" or hasattr(model, "ood_score")):
        return "critic"
    prior = getattr(model, "prior", None)
    if name == "ab_vae" or (prior is not None and hasattr(prior, "log_prob")):
        return "prior_log_density"
    if hasattr(model, "elbo"):
        return "elbo"
    raise DisbenchError(
        f"model {name!r} has no OoD score: it needs elbo(x) (VAE family), prior.log_prob(z) "
        f"(ab_vae) or critic(x, z) (gwae); choose one of {', '.join(SCORERS)} explicitly"
    )


def _score_batches(model: Any, imgs: Any, fn: Callable, scorer: str, *, batch_size: int,
                   device: Any, random_state: int) -> np.ndarray:
    """``fn(model, x)`` over batches of ``imgs``, in eval mode, under a forked, seeded RNG."""
    import torch
    from disbench.errors import DisbenchError

    n = len(imgs)
    out = np.empty(n, dtype=np.float64)
    was_training = model.training
    model.eval()
    forked = [device] if device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=forked):
            torch.manual_seed(random_state)
            for start in range(0, n, batch_size):
                chunk = torch.as_tensor(np.asarray(imgs[start:start + batch_size]))
                x = chunk.to(device=device, dtype=torch.float32) / 255.0
                s = fn(model, x)
                s = s.detach().reshape(s.shape[0], -1)
                if s.shape[1] != 1 or s.shape[0] != x.shape[0]:
                    raise DisbenchError(
                        f"OoD scorer {scorer!r} returned shape {tuple(s.shape)} for a batch of "
                        f"{x.shape[0]}; expected one score per image"
                    )
                out[start:start + x.shape[0]] = s[:, 0].double().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def ood_scores(
    model: Any,
    images: Any,
    *,
    scorer: str = "auto",
    batch_size: int = 256,
    device: Any = None,
    random_state: int = 0,
) -> np.ndarray:
    """Per-image OoD scores of ``model`` (higher = more in-distribution), float64 (N,).

    Parameters
    ----------
    model : disbench.baselines.base.Model
        A trained model (put in eval mode here; its training mode is restored afterwards).
    images : uint8 array-like (N, C, H, W), or a dataset with ``images``
        Images in 0..255; the model sees ``x = images / 255`` in [0, 1].
    scorer : {"auto", "elbo", "prior_log_density", "critic"}
        ``"auto"`` picks :func:`default_scorer`.
    batch_size : int
        Images per forward pass (the scores do not depend on it).
    device : torch.device or str, optional
        Defaults to the device of the model's parameters.
    random_state : int
        Seed of the noise a stochastic score draws (e.g. the ELBO's posterior sample).
    """
    from disbench.errors import DisbenchError

    if scorer == "auto":
        scorer = default_scorer(model)
    if scorer not in SCORERS:
        raise DisbenchError(f"unknown OoD scorer {scorer!r}; choose one of {', '.join(SCORERS)}")
    imgs = getattr(images, "images", images)
    device = module_device(model, device)
    if len(imgs) == 0:
        raise ValueError("images is empty")
    out = _score_batches(model, imgs, SCORERS[scorer], scorer, batch_size=batch_size,
                         device=device, random_state=random_state)
    if not np.isfinite(out).all():
        raise DisbenchError(f"OoD scorer {scorer!r} produced NaN/inf scores (diverged model?)")
    return out


# --------------------------------------------------------------------------- GWAE protocol
def _to_28x28_gray(images: Any, name: str) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, 1, 28, 28) (area resampling; mean over channels)."""
    import torch
    import torch.nn.functional as F

    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"{name} images must be (N, C, H, W), got shape {arr.shape}")
    if arr.shape[1:] == (1, 28, 28):
        return arr.astype(np.uint8, copy=False)
    t = torch.as_tensor(arr, dtype=torch.float32).mean(dim=1, keepdim=True)
    if t.shape[-2:] != (28, 28):
        t = F.interpolate(t, size=(28, 28), mode="area")
    return t.round().clamp(0, 255).to(torch.uint8).numpy()


def _pick(ds: Any, n: int | None, name: str, rng: np.random.Generator) -> np.ndarray:
    """All images of ``ds``, or a sorted random subset of ``n``, as uint8 (N, 1, 28, 28)."""
    total = len(ds.images)
    if n is None or n >= total:
        idx = np.arange(total)
    else:
        idx = np.sort(rng.choice(total, size=n, replace=False))
    return _to_28x28_gray(np.asarray(ds.images[idx]), name)


def _load_sets(load_dataset: Callable[..., Any], source: str, sets: dict[str, tuple],
               rng: np.random.Generator) -> dict[str, tuple]:
    """Load and subsample the in- and out-of-distribution sets, in that order (one ``rng``).

    ``sets`` maps "in"/"out" to (dataset, split, count or None); returns "in"/"out" ->
    (dataset, split, loaded set, uint8 images (N, 1, 28, 28)).
    """
    loaded = {}
    for key, (name, split, _) in sets.items():
        # Omniglot's own 28x28 view (area down-sampling, ink bright as in MNIST)
        kw = {"size": 28} if key == "out" and name == "omniglot" else {}
        loaded[key] = load_dataset(name, source=source, split=split, **kw)
    return {key: (name, split, loaded[key], _pick(loaded[key], n, name, rng))
            for key, (name, split, n) in sets.items()}


def _save_roc(out_dir: str | Path, out_dataset: str, s_in: np.ndarray, s_out: np.ndarray,
              auroc: float) -> str:
    """Write ``roc_<out_dataset>.npz`` atomically; return its file name."""
    from disbench.atomic import atomic_path

    curve = roc_curve(s_in, s_out)
    path = Path(out_dir) / f"roc_{out_dataset}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fpr=curve.fpr, tpr=curve.tpr, thresholds=curve.thresholds,
                 scores_in=s_in, scores_out=s_out, auroc=np.float64(auroc))
    return path.name


def _protocol_spec(scorer: str, sets: dict[str, tuple[str, str, Any, int]],
                   random_state: int) -> dict[str, Any]:
    """The record's spec; ``sets`` maps "in"/"out" to (dataset, split, loaded set, count)."""
    spec: dict[str, Any] = {
        "scorer": scorer,
        "convention": "higher score = more in-distribution; in-distribution is positive",
    }
    for key, (name, split, ds, count) in sets.items():
        spec[key] = {"dataset": name, "split": split, "source": getattr(ds, "source", None),
                     "fingerprint": getattr(ds, "fingerprint", None), "num_samples": count}
    spec["out"]["resized_to"] = [1, 28, 28]
    spec["random_state"] = random_state
    return spec


def gwae_ood_protocol(
    model: Any,
    *,
    load_dataset: Callable[..., Any],
    source: str = "auto",
    in_dataset: str = "mnist",
    in_split: str = "test",
    out_dataset: str = "omniglot",
    out_split: str = "evaluation",
    scorer: str = "auto",
    num_in: int | None = None,
    num_out: int | None = None,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
    out_dir: str | Path | None = None,
) -> dict:
    """The GWAE OoD evaluation (Nakagawa et al. 2023): in = MNIST test, out = Omniglot
    evaluation split at 28x28, score = the model's OoD scorer (the critic for gwae).

    Parameters
    ----------
    model : Model
        A model trained on MNIST (28x28x1).
    load_dataset : callable
        ``load_dataset(name, source=..., split=..., **kw)``: ``disbench.datasets.get``.
    source, in_dataset, in_split, out_dataset, out_split : str
        The source of both datasets, and the two datasets (defaults: the paper's protocol).
    scorer : str
        See :func:`ood_scores`.
    num_in, num_out : int, optional
        Use a random subset of this many images (drawn with ``random_state``); default all.
    out_dir : path, optional
        Where to save ``roc_<out_dataset>.npz`` (``fpr``, ``tpr``, ``thresholds``,
        ``scores_in``, ``scores_out``, ``auroc``) for plotting.

    Returns
    -------
    dict
        An ``ood_auroc`` record; its spec names the datasets, splits, sources, fingerprints,
        sample counts, the scorer and the ROC file.
    """
    from .registry import declared_record

    if scorer == "auto":
        scorer = default_scorer(model)
    sets = _load_sets(load_dataset, source, {"in": (in_dataset, in_split, num_in),
                                             "out": (out_dataset, out_split, num_out)},
                      np.random.default_rng(random_state))
    s_in, s_out = (ood_scores(model, sets[key][3], scorer=scorer, batch_size=batch_size,
                              device=device, random_state=random_state + offset)
                   for offset, key in enumerate(("in", "out")))
    auroc = ood_auroc(s_in, s_out)
    spec = _protocol_spec(scorer, {k: (n, sp, ds, len(x)) for k, (n, sp, ds, x) in sets.items()},
                          random_state)
    if out_dir is not None:
        spec["roc_file"] = _save_roc(out_dir, out_dataset, s_in, s_out, auroc)
    return {"metric": "ood_auroc", "value": auroc,
            "higher_is_better": declared_record("ood_auroc").higher_is_better,
            "version": VERSION, "spec": spec}
