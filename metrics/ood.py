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
  (The authors' OoD script scores the critic elsewhere, at ``(G(z), z)``: see
  :func:`gwae_ood_protocol`.)
- ``"energy"``: ``-E(x)``, the negated sample energy of DAGMM's Gaussian mixture on its
  compression and reconstruction features (Zong et al., "Deep autoencoding Gaussian mixture
  model for unsupervised anomaly detection", ICLR 2018, Eq. 6: high energy = anomalous).

Scores that draw noise (the ELBO's posterior sample) are computed under
``torch.manual_seed(random_state)`` in a forked RNG, so a call is reproducible and leaves
the global RNG untouched; deterministic scores do not depend on ``batch_size``.

:func:`gwae_ood_protocol` is the ready-made GWAE evaluation: a model trained on MNIST,
in = MNIST test, out = Omniglot evaluation split; for gwae by default the authors' protocol
(``variant="official"``: ganmodokix/gwae ``clu.py``, the critic energy ``f(G(z), z)`` of
posterior samples on 3x64x64 views, Omniglot with black strokes on white), with the
variants of :data:`GWAE_OOD_VARIANTS` (``disbench_v1``: disbench's earlier protocol); the
record's spec names the variant. The caller passes the dataset loader
(``disbench.datasets.get``), since metrics do not import the dataset package; the views the
protocol needs are made here from the loader's uint8 images (:func:`official_view`).
Record version 2: the spec names the ``variant``.

**The official GWAE OoD protocol** (``variant="official"``, the default for the critic
scorer) follows ganmodokix/gwae ``clu.py`` (``ood_detection``, ``make_ood_dataset``,
``ood_samples``, ``anormaly_gwae``) with the data library its ``requirements.txt`` pins,
ganmodokix/vaetc@develop_may:

- in-distribution: the MNIST test split (torchvision ``MNIST(train=False)``), its codes those
  of ``zt_test.npz`` (``evaluation/metrics/save.py`` ``measure`` through
  ``evaluation/preprocess/encode.py`` ``encode_set``: ``model.reparameterize(mean, logvar)``,
  which samples on that branch, ``REPARAMETERIZE_GAUSS_IN_ENCODE = True`` in
  ``models/abstract.py``): one posterior sample per image;
- out-of-distribution: Omniglot's evaluation split (``vaetc.data.omniglot().test_set`` =
  torchvision ``Omniglot(background=False)``), ``ceil(N_in / 64) * 64`` images from a
  shuffled, drop_last loader (:func:`official_out_indices`; 10,048 for 10,000), codes
  ``model.encode(x)``, which on develop_may also returns one posterior sample;
- both through vaetc's transform (:func:`official_view`: 3x64x64, grey repeated to 3
  channels), Omniglot with the files' polarity (black strokes on white; disbench's loader
  inverts the ink, so the view inverts it back, see :func:`ink_is_bright`);
- score: ``anormaly``, by model family, of the codes ("the higher ``anomaly`` is, the more
  likely ``z`` is to be OoD"), in eval mode: for GWAE ``anormaly_gwae``, the critic at the
  decoded code and the code, ``disc_block(model.decode(z), z)``; for DAGMM
  ``anormaly_dagmm``, the sample energy of the code under the running mixture
  (:meth:`disbench.baselines.dagmm.DAGMM.code_energy`, vaetc's ``gmm_input="code"``); for
  every other model ``anormaly_stdgaussian``, ``-log N(z; 0, I)``. disbench reports the
  negated anomaly (higher = more in-distribution), which leaves the AUROC unchanged.

The other variants: ``vaetc_main`` (vaetc's main branch, where
``REPARAMETERIZE_GAUSS_IN_ENCODE = False`` and ``encode_set`` samples explicitly:
in-distribution samples, OoD posterior means; the description in disbench's issue 13),
``means`` (posterior means for both; symmetric, no official source) and ``disbench_v1``
(disbench's earlier protocol: the model's scorer, e.g. ``-f(x, encode(x))`` or the ELBO, at
1x28x28 on ink-bright Omniglot). The default is ``official`` for the GWAE critic and for a
model that is not 1x28x28, ``disbench_v1`` for the other scorers (:func:`default_variant`);
``ood_variant: official`` in a spec's ``eval`` scores every model as ``clu.py``. The official view is the
model's input shape: 3x64x64 for a model trained as the official one (vaetc's fixed
``IMAGE_SHAPE``); a model of another shape is scored at its own shape, recorded as
``spec["view"]["official_shape"] = False``. The protocol uses the whole MNIST test split
(10,000 images) when ``num_in`` is None; the ``ood_auroc`` evaluator passes ``num_test``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._device import module_device

__all__ = [
    "GWAE_OOD_VARIANTS",
    "OFFICIAL_ANOMALIES",
    "OFFICIAL_VIEW",
    "SCORERS",
    "OodVariant",
    "RocCurve",
    "default_scorer",
    "default_variant",
    "gwae_ood_protocol",
    "ink_is_bright",
    "official_anomaly",
    "official_out_indices",
    "official_view",
    "ood_auroc",
    "ood_scores",
    "roc_curve",
]

log = logging.getLogger(__name__)

VERSION = "2"


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


def _neg_sample_energy(model: Any, x: Any) -> Any:
    return -model.energy(x)  # DAGMM's energy is high on anomalies: negate


SCORERS: dict[str, Callable[[Any, Any], Any]] = {
    "elbo": _elbo,
    "prior_log_density": _prior_log_density,
    "critic": _critic,
    "energy": _neg_sample_energy,
}


def default_scorer(model: Any) -> str:
    """The paper's OoD score for ``model``'s family.

    gwae -> ``"critic"``; a model with a sample energy (dagmm) -> ``"energy"``; a model
    with a prior that has ``log_prob`` (ab_vae) -> ``"prior_log_density"``; any other model
    with ``elbo`` (VAE family) -> ``"elbo"``.
    """
    from disbench.errors import DisbenchError

    name = getattr(model, "registry_name", type(model).__name__)
    if hasattr(model, "critic") and (name == "gwae" or hasattr(model, "ood_score")):
        return "critic"
    if hasattr(model, "energy"):
        return "energy"
    prior = getattr(model, "prior", None)
    if name == "ab_vae" or (prior is not None and hasattr(prior, "log_prob")):
        return "prior_log_density"
    if hasattr(model, "elbo"):
        return "elbo"
    raise DisbenchError(
        f"model {name!r} has no OoD score: it needs elbo(x) (VAE family), prior.log_prob(z) "
        f"(ab_vae), critic(x, z) (gwae) or energy(x) (dagmm); choose one of {', '.join(SCORERS)} explicitly"
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
    scorer : {"auto", "elbo", "prior_log_density", "critic", "energy"}
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
#: The official protocol's view: vaetc's fixed ``IMAGE_SHAPE`` (``vaetc/data/utils.py``).
OFFICIAL_VIEW = (3, 64, 64)
#: Images per batch of the official OoD script (``clu.py``: ``ood_samples`` batch_size=64).
OFFICIAL_BATCH = 64
#: Datasets whose published files have dark ink on a light background (the official view
#: keeps the files' polarity; torchvision's Omniglot reads the PNGs as they are).
DARK_INK_FILES = ("omniglot",)


@dataclass(frozen=True)
class OodVariant:
    """One way of running the GWAE OoD evaluation (see :data:`GWAE_OOD_VARIANTS`).

    Attributes
    ----------
    codes_in, codes_out : {"sampled", "mean"}
        The codes z of the in- and out-of-distribution images: one reparameterised
        posterior sample per image, or the posterior mean (``model.encode``).
    score : {"energy", "scorer"}
        ``energy``: the official ``anormaly`` of the codes by model family, negated (higher
        = more in-distribution; :func:`official_anomaly`); ``scorer``: :func:`ood_scores`
        with the model's scorer (for gwae ``-f(x, encode(x))``).
    view : {"official", "gray28"}
        ``official``: :func:`official_view` at the model's input shape (3x64x64 for the
        official protocol), the files' polarity; ``gray28``: 1x28x28 grey, Omniglot's own
        28x28 view (area down-sampling, ink bright).
    about : str
        Where the variant comes from.
    """

    codes_in: str
    codes_out: str
    score: str
    view: str
    about: str


GWAE_OOD_VARIANTS: dict[str, OodVariant] = {
    "official": OodVariant(
        "sampled", "sampled", "energy", "official",
        "ganmodokix/gwae clu.py (anormaly_gwae, ood_samples, ood_detection) with the vaetc "
        "branch its requirements.txt pins, develop_may: encode() samples "
        "(REPARAMETERIZE_GAUSS_IN_ENCODE = True), so both sets are posterior samples"),
    "vaetc_main": OodVariant(
        "sampled", "mean", "energy", "official",
        "as official, with vaetc's main branch: the in-distribution codes are samples "
        "(encode_set), the OoD codes posterior means (encode() with "
        "REPARAMETERIZE_GAUSS_IN_ENCODE = False)"),
    "means": OodVariant(
        "mean", "mean", "energy", "official",
        "as official, posterior means for both sets (symmetric; no official source)"),
    "disbench_v1": OodVariant(
        "mean", "mean", "scorer", "gray28",
        "disbench before issue 13: the model's scorer at (x, encode(x)) on 1x28x28 grey "
        "images, Omniglot's 28x28 view with bright ink (no official source)"),
}


def official_view(images: Any, shape: tuple[int, int, int] = OFFICIAL_VIEW, *,
                  invert: bool = False, antialias: bool = False) -> np.ndarray:
    """The official data library's image transform, on uint8 images: float32 (N, *shape).

    ganmodokix/vaetc (branch develop_may) ``data/mnist.py`` and ``data/omniglot.py``:
    ``ToTensor()`` (x / 255), ``Lambda(x.repeat(IMAGE_CHANNELS, 1, 1))`` (grey repeated to
    3 channels), ``Resize(size=(IMAGE_HEIGHT, IMAGE_WIDTH))`` on the tensor, which is
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
    (torchvision ``transforms/_functional_tensor.py`` ``resize``). ``antialias=False`` is
    torchvision's behaviour for tensors before v0.17, the versions of 2022-2023 when the
    official code was written (the default became True in v0.17, pytorch/vision PR
    #7949; torchvision is not pinned, so this could not be checked against the authors'
    environment); it only matters when shrinking (Omniglot 105 -> 64).

    Parameters
    ----------
    images : uint8 array (N, C, H, W)
        Images as a disbench loader gives them.
    shape : (C, H, W)
        Output shape; C must equal the input's channels or the input must be grey.
    invert : bool
        ``255 - images`` first (undoes a loader's ink inversion, e.g. disbench's Omniglot).
    antialias : bool
        Antialiased down-sampling (torchvision >= 0.17's default).
    """
    import torch
    import torch.nn.functional as F

    arr = np.asarray(images)
    if arr.ndim != 4 or arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {arr.dtype} {arr.shape}")
    c, h, w = (int(s) for s in shape)
    if arr.shape[1] not in (1, c):
        raise ValueError(f"images have {arr.shape[1]} channels; the view needs {c} or 1")
    if invert:
        arr = 255 - arr
    x = torch.from_numpy(np.ascontiguousarray(arr)).float() / 255.0  # ToTensor
    if x.shape[1] != c:
        x = x.repeat(1, c, 1, 1)
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                          antialias=antialias)
    return x.numpy()


def ink_is_bright(images: Any) -> bool:
    """True when strokes are bright on a dark background (mean pixel below mid-grey).

    Meant for stroke data (MNIST, Omniglot), whose ink covers a small part of each image,
    so the background decides the mean.
    """
    return float(np.mean(np.asarray(images), dtype=np.float64)) < 127.5


def official_out_indices(n_in: int, n_out_total: int, rng: np.random.Generator,
                         batch: int = OFFICIAL_BATCH) -> np.ndarray:
    """The OoD images the official script scores: ``ceil(n_in / batch) * batch`` indices.

    ``clu.py`` ``ood_samples(cp, num_samples=N_in)`` draws ``range(0, N_in, 64)`` batches
    from a shuffled ``DataLoader(batch_size=64, drop_last=True)`` over the OoD set, starting
    a new shuffled pass when one is used up (10,048 images for the 10,000 MNIST test images).
    """
    per_pass = (n_out_total // batch) * batch
    if per_pass == 0:
        raise ValueError(f"the out-of-distribution set has {n_out_total} images; the official "
                         f"protocol needs at least one batch of {batch}")
    need = -(-int(n_in) // batch) * batch
    passes = [rng.permutation(n_out_total)[:per_pass] for _ in range(-(-need // per_pass))]
    return np.concatenate(passes)[:need]


def _model_shape(model: Any) -> Any:
    """The model's ``hparams.image_shape`` (None: not declared)."""
    return getattr(getattr(model, "hparams", None), "image_shape", None)


def _view_shape(model: Any) -> tuple[int, int, int]:
    shape = _model_shape(model)
    return OFFICIAL_VIEW if shape is None else tuple(int(s) for s in shape)


def _posterior(model: Any, x: Any) -> tuple[Any, Any] | None:
    """(mean, logvar) of q(z|x): ``model.posterior(x)``, else a Gaussian ``model.encoder``;
    None for a deterministic encoder (a tensor: DAGMM's), whose code is its own sample."""
    from disbench.errors import DisbenchError

    if hasattr(model, "posterior"):
        return model.posterior(x)
    out = model.encoder(x) if hasattr(model, "encoder") else None
    if isinstance(out, tuple) and len(out) == 2:
        return out
    if hasattr(out, "shape"):
        return None
    raise DisbenchError(f"{type(model).__name__} has no Gaussian posterior (posterior(x) or an "
                        "encoder returning (mean, logvar)): use the GWAE OoD variant 'means'")


def _critic_energy(model: Any, z: Any) -> Any:
    """``f(G(z), z)``: ``model.critic_energy(z)``, else ``model.critic(model.decode(z), z)``."""
    if hasattr(model, "critic_energy"):
        return model.critic_energy(z)
    return model.critic(model.decode(z), z)


def _code_energy(model: Any, z: Any) -> Any:
    return model.code_energy(z)


def _std_gaussian_nll(model: Any, z: Any) -> Any:  # noqa: ARG001 (one signature for all)
    return 0.5 * (z.double() ** 2 + math.log(2.0 * math.pi)).sum(dim=1)


#: ``clu.py`` ``anormaly``'s three cases: name -> (what it is, anomaly(model, z))
OFFICIAL_ANOMALIES: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "critic_energy": ("-f(G(z), z), z the codes of the images (clu.py anormaly_gwae, negated)",
                      _critic_energy),
    "dagmm_code_energy": ("-E(z) of the codes under the running mixture (clu.py "
                          + "anormaly_dagmm, negated)", _code_energy),
    "std_gaussian": ("log N(z; 0, I) of the codes (clu.py anormaly_stdgaussian, negated)",
                     _std_gaussian_nll),
}


def official_anomaly(model: Any) -> str:
    """The key of :data:`OFFICIAL_ANOMALIES` ganmodokix/gwae ``clu.py`` ``anormaly`` uses
    for ``model``: the critic energy for GWAE, the code energy for DAGMM, the standard
    Gaussian for every other model."""
    if hasattr(model, "critic_energy") or hasattr(model, "critic"):
        return "critic_energy"
    if hasattr(model, "code_energy"):
        return "dagmm_code_energy"
    return "std_gaussian"


def _codes(model: Any, images: np.ndarray, codes: str, view: Callable, *, batch_size: int,
           device: Any, seed: int) -> tuple[Any, str]:
    """Codes (N, D) of uint8 ``images`` seen through ``view``, and what they are: posterior
    means, one sample each with noise drawn at once from a CPU generator seeded with
    ``seed``, or a deterministic encoder's codes (vaetc's ``encode_set`` samples only
    Gaussian encoders)."""
    import torch

    means, logvars = [], []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(view(images[start:start + batch_size])).to(device)
        post = None if codes == "mean" else _posterior(model, x)
        if post is None:
            means.append(model.encode(x).float().cpu())
        else:
            means.append(post[0].float().cpu())
            logvars.append(post[1].float().cpu())
    mean = torch.cat(means)
    if codes == "mean":
        return mean, "mean"
    if not logvars:
        return mean, "deterministic"
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(seed))
    return mean + torch.exp(0.5 * torch.cat(logvars)) * eps, codes


def _energy_scores(model: Any, images: np.ndarray, codes: str, view: Callable,
                   anomaly: Callable[[Any, Any], Any], *, batch_size: int, device: Any,
                   seed: int) -> tuple[np.ndarray, str]:
    """The negated ``anomaly`` (one of :data:`OFFICIAL_ANOMALIES`) of each image's code
    (higher = more in-distribution), in eval mode, and what the codes are (:func:`_codes`)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            z, kind = _codes(model, images, codes, view, batch_size=batch_size, device=device,
                             seed=seed)
            out = [-anomaly(model, z[s:s + batch_size].to(device)).reshape(-1).double().cpu()
                   for s in range(0, len(z), batch_size)]
    finally:
        model.train(was_training)
    scores = torch.cat(out).numpy()
    if scores.shape != (len(images),) or not np.isfinite(scores).all():
        from disbench.errors import DisbenchError

        raise DisbenchError(f"the official OoD anomaly gave {scores.shape} scores for "
                            f"{len(images)} images, or NaN/inf (diverged model?)")
    return scores, kind


def _select(total: int, count: Any, rng: np.random.Generator) -> np.ndarray:
    """Indices: all (``None`` or more than there are), a sorted random subset of ``count``,
    or, for ``("official", n_in)``, :func:`official_out_indices`."""
    if isinstance(count, tuple):
        return official_out_indices(count[1], total, rng)
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(rng.choice(total, size=int(count), replace=False))


def _official_set(load_dataset: Callable[..., Any], source: str, name: str, split: str,
                  count: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """One set at the loader's resolution: (uint8 images, spec entry). Omniglot is marked
    for inversion when the loader gives bright ink (the official view has the files' dark
    ink on white)."""
    ds = load_dataset(name, source=source, split=split)
    idx = _select(len(ds.images), count, rng)
    uniq, inverse = np.unique(idx, return_inverse=True)  # sorted reads (h5py-safe), repeats
    images = np.asarray(ds.images[uniq])[inverse]
    invert = name in DARK_INK_FILES and ink_is_bright(images)
    return images, {"dataset": name, "split": split, "source": getattr(ds, "source", None),
                    "fingerprint": getattr(ds, "fingerprint", None),
                    "num_samples": len(images), "inverted": bool(invert)}


# `scorer` unused here: both protocols share one signature (see gwae_ood_protocol)
def _official_protocol(model: Any, variant: str, scorer: str,  # noqa: ARG001
                       load_dataset: Callable[..., Any], source: str,
                       sets: dict[str, tuple[str, str]], num_in: int | None,
                       num_out: int | None, random_state: int, batch_size: int,
                       device: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The negated official anomaly (:func:`official_anomaly`) of both sets' codes through
    :func:`official_view`, and the spec (``scorer``, the model's own, is not used)."""
    import functools

    v = GWAE_OOD_VARIANTS[variant]
    rng = np.random.default_rng(random_state)
    shape = _view_shape(model)
    if shape != OFFICIAL_VIEW:
        log.warning("the official GWAE OoD protocol scores %s images; this model takes %s: "
                    "scoring at the model's shape (recorded in the spec)", OFFICIAL_VIEW, shape)
    dev = module_device(model, device)
    imgs_in, info_in = _official_set(load_dataset, source, *sets["in"], num_in, rng)
    out_count = num_out if num_out is not None else ("official", len(imgs_in))
    imgs_out, info_out = _official_set(load_dataset, source, *sets["out"], out_count, rng)
    anomaly = official_anomaly(model)
    scores = []
    for offset, (imgs, info, codes) in enumerate(((imgs_in, info_in, v.codes_in),
                                                   (imgs_out, info_out, v.codes_out))):
        view = functools.partial(official_view, shape=shape, invert=info["inverted"])
        score, info["codes"] = _energy_scores(
            model, imgs, codes, view, OFFICIAL_ANOMALIES[anomaly][1], batch_size=batch_size,
            device=dev, seed=random_state + offset)
        scores.append(score)
    if num_out is None:
        info_out["count"] = f"ceil(num_in / {OFFICIAL_BATCH}) * {OFFICIAL_BATCH} (clu.py)"
    spec = {"variant": variant, "about": v.about, "scorer": anomaly,
            "score": OFFICIAL_ANOMALIES[anomaly][0],
            "convention": "higher score = more in-distribution; in-distribution is positive",
            "view": {"shape": list(shape), "official_shape": shape == OFFICIAL_VIEW,
                     "transform": "x / 255, grey repeated to the channels, bilinear resize "
                                  "(align_corners=False, antialias=False)"},
            "in": info_in, "out": info_out, "random_state": random_state}
    return scores[0], scores[1], spec


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


def _disbench_v1_protocol(model: Any, variant: str, scorer: str,
                          load_dataset: Callable[..., Any], source: str,
                          sets: dict[str, tuple[str, str]], num_in: int | None,
                          num_out: int | None, random_state: int, batch_size: int,
                          device: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The ``disbench_v1`` variant (``variant``): the model's scorer on 1x28x28 grey images."""
    from disbench.errors import DisbenchError

    shape = _model_shape(model)
    if shape is not None and tuple(shape) != (1, 28, 28):
        raise DisbenchError(f"the GWAE OoD variant 'disbench_v1' scores 1x28x28 images; this "
                            f"model takes {tuple(shape)}: use variant 'official'")
    counts = {"in": num_in, "out": num_out}
    loaded = _load_sets(load_dataset, source, {k: (*sets[k], counts[k]) for k in sets},
                        np.random.default_rng(random_state))
    s_in, s_out = (ood_scores(model, loaded[key][3], scorer=scorer, batch_size=batch_size,
                              device=device, random_state=random_state + offset)
                   for offset, key in enumerate(("in", "out")))
    spec = {"variant": variant, "about": GWAE_OOD_VARIANTS[variant].about,
            **_protocol_spec(scorer, {k: (n, sp, ds, len(x))
                                      for k, (n, sp, ds, x) in loaded.items()}, random_state)}
    return s_in, s_out, spec


def default_variant(scorer: str, model: Any = None) -> str:
    """``official`` for the GWAE critic and for a ``model`` whose declared input shape is
    not 1x28x28 (``disbench_v1`` scores 1x28x28 images only); ``disbench_v1`` otherwise, the
    protocol earlier records of the other scorers used."""
    shape = _model_shape(model)
    if scorer == "critic" or (shape is not None and tuple(shape) != (1, 28, 28)):
        return "official"
    return "disbench_v1"


def _check_variant(variant: str | None, scorer: str, model: Any = None) -> str:
    from disbench.errors import DisbenchError

    variant = default_variant(scorer, model) if variant is None else variant
    if variant not in GWAE_OOD_VARIANTS:
        raise DisbenchError(f"unknown GWAE OoD variant {variant!r}; choose one of "
                            f"{', '.join(GWAE_OOD_VARIANTS)}")
    return variant


def gwae_ood_protocol(
    model: Any,
    *,
    load_dataset: Callable[..., Any],
    source: str = "auto",
    in_dataset: str = "mnist",
    in_split: str = "test",
    out_dataset: str = "omniglot",
    out_split: str = "evaluation",
    variant: str | None = None,
    scorer: str = "auto",
    num_in: int | None = None,
    num_out: int | None = None,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
    out_dir: str | Path | None = None,
) -> dict:
    """The GWAE OoD evaluation (Nakagawa et al. 2023): in = MNIST test, out = Omniglot
    evaluation split; for gwae by default the authors' protocol (``variant="official"``,
    described in the module docstring), the other variants in :data:`GWAE_OOD_VARIANTS`.

    Parameters
    ----------
    model, load_dataset
        A model trained on the in-distribution set; ``load_dataset(name, source=...,
        split=..., **kw)`` (``disbench.datasets.get``).
    source, in_dataset, in_split, out_dataset, out_split : str
        The source of both datasets, and the two datasets (defaults: the paper's protocol).
    variant : str, optional
        A key of :data:`GWAE_OOD_VARIANTS` (default :func:`default_variant`).
    scorer : str
        See :func:`ood_scores` (``disbench_v1`` only; the others: :func:`official_anomaly`).
    num_in, num_out : int, optional
        Random subsets of this many images (drawn with ``random_state``, which also seeds
        the posterior samples). Defaults: all in-distribution images (the official 10,000);
        out: all for ``disbench_v1``, else the official ``ceil(N_in / 64) * 64``.
    out_dir : path, optional
        Where to save ``roc_<out_dataset>.npz`` (``fpr``, ``tpr``, ``thresholds``,
        ``scores_in``, ``scores_out``, ``auroc``) for plotting.

    Returns an ``ood_auroc`` record; its spec names the variant, datasets, splits, sources,
    fingerprints, sample counts, codes, view, score and the ROC file.
    """
    from .registry import declared_record

    if scorer == "auto":
        scorer = default_scorer(model)
    variant = _check_variant(variant, scorer, model)
    sets = {"in": (in_dataset, in_split), "out": (out_dataset, out_split)}
    run = _official_protocol if GWAE_OOD_VARIANTS[variant].score == "energy" else \
        _disbench_v1_protocol
    s_in, s_out, spec = run(model, variant, scorer, load_dataset, source, sets, num_in,
                            num_out, random_state, batch_size, device)
    auroc = ood_auroc(s_in, s_out)
    if out_dir is not None:
        spec["roc_file"] = _save_roc(out_dir, out_dataset, s_in, s_out, auroc)
    return {"metric": "ood_auroc", "value": auroc,
            "higher_is_better": declared_record("ood_auroc").higher_is_better,
            "version": VERSION, "spec": spec}
