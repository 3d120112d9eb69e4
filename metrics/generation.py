"""Model-level generation, reconstruction and OoD evaluations, registered as evaluators.

Records (``{"metric", "value", "higher_is_better", "version", "spec"}``; the directions are
declared where the evaluators are registered, at the end of this module):

========================  =============================================================
``fid``                   Frechet distance of InceptionV3 pool3 features (Heusel et al.
                          2017): ``num_samples`` prior samples vs as many dataset images
``fid_recon``             same, reconstructions ``decode(encode(x))`` vs the images x
``fd_classifier``         Frechet distance in the penultimate layer of disbench's
                          feature classifier (:mod:`.feature_classifier`); *not* FID
``fd_classifier_recon``   same for reconstructions
``psnr``                  mean per-image PSNR of reconstructions, ``data_range=1.0`` on
                          images in [0, 1] (:func:`disbench.metrics.psnr.psnr`)
``ood_auroc``             ROC AUC of the model's OoD score, in = the dataset's test
                          split, out = :data:`OOD_PAIRS` (the GWAE protocol for MNIST;
                          for gwae the authors' ``official`` variant, named in the spec)
========================  =============================================================

Generated and reconstructed images are quantised to uint8 before feature extraction, as the
standard FID pipeline does by reading PNG files; real images are the dataset's uint8 pixels.
Both sets are drawn with ``random_state`` (dataset subset without replacement; prior samples
from a ``torch.Generator`` seeded with it). Sequence data (N, T, C, H, W) is scored frame by
frame. FID is reported only for Inception features: without the ``fid`` extra or the
weights the ``fid`` evaluators raise the error that says how to get them; ``fd_classifier``
is the offline alternative for labelled sets.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from disbench.metrics import feature_classifier as fc
from disbench.metrics.fid import fid as frechet_from_features
from disbench.metrics.psnr import psnr_per_image

from ._device import module_device
from .registry import Record, declared_record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = [
    "OOD_PAIRS",
    "frechet_record",
    "generated_images",
    "ood_record",
    "psnr_record",
    "reconstructed_images",
]

VERSION = "1"
DEFAULT_NUM_SAMPLES = 5000

#: in-distribution dataset -> (out-of-distribution dataset, its split)
OOD_PAIRS: dict[str, tuple[str, str]] = {
    "mnist": ("omniglot", "evaluation"),  # Nakagawa et al. 2023 (GWAE)
    "fashion_mnist": ("mnist", "test"),  # Nalisnick et al. 2019
}


# ----------------------------------------------------------------------------- helpers
def _frame_shape(dataset: Any) -> tuple[int, ...]:
    """(C, H, W) of one frame (the last three axes of the images)."""
    return tuple(int(v) for v in dataset.images.shape[-3:])


def _subset(dataset: Any, num_samples: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, uint8 images)``: a seeded subset without replacement (sorted indices)."""
    total = len(dataset.images)
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2, got {num_samples}")
    rng = np.random.default_rng(random_state)
    idx = np.arange(total) if num_samples >= total else np.sort(
        rng.choice(total, size=num_samples, replace=False))
    return idx, np.asarray(dataset.images[idx])


def _quantise(x: Any) -> np.ndarray:
    """Float images in [0, 1] -> uint8, as saving to PNG does."""
    import torch

    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def generated_images(model: Any, n: int, *, random_state: int = 0, batch_size: int = 256,
                     device: Any = None) -> np.ndarray:
    """``n`` images decoded from prior samples, quantised to uint8 (reproducible from the seed)."""
    import torch

    dev = module_device(model, device)
    gen = torch.Generator(device=dev).manual_seed(random_state)
    chunks = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                chunks.append(_quantise(model.sample(min(batch_size, n - start), generator=gen)))
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


def reconstructed_images(model: Any, images: np.ndarray, *, batch_size: int = 256,
                         device: Any = None, quantise: bool = True) -> np.ndarray:
    """``reconstruct(x)`` of uint8 images (x = images / 255); uint8 or float64 in [0, 1]."""
    import torch

    dev = module_device(model, device)
    chunks = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(np.array(images[start:start + batch_size])).to(
                    dev, torch.float32) / 255.0
                r = model.reconstruct(x)
                chunks.append(_quantise(r) if quantise else r.double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


def _dataset_spec(dataset: Any) -> dict:
    return {k: getattr(dataset, k, None) for k in ("name", "split", "source", "fingerprint")}


def _record(metric: str, value: float, spec: dict, *, lower_if_undeclared: bool = False) -> dict:
    """A record whose direction is the registry's (a stand-in network's ``fd_<network>``
    Frechet distance is no registered metric: lower is better)."""
    if lower_if_undeclared and metric not in _FRECHET_NAMES:
        higher = False
    else:
        higher = declared_record(metric).higher_is_better
    return {"metric": metric, "value": float(value), "higher_is_better": higher,
            "version": VERSION, "spec": spec}


# ----------------------------------------------------------------------------- records
def _image_sets(model: Any, dataset: Any, mode: str, num_samples: int, random_state: int,
                batch_size: int, device: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(real frames, generated or reconstructed frames, spec)`` for a Frechet distance."""
    frame = _frame_shape(dataset)
    _, real = _subset(dataset, num_samples, random_state)
    n = len(real)
    if mode == "generation":
        fake = generated_images(model, n, random_state=random_state, batch_size=batch_size,
                                device=device)
    else:
        fake = reconstructed_images(model, real, batch_size=batch_size, device=device)
    real, fake = real.reshape(-1, *frame), fake.reshape(-1, *frame)
    spec: dict[str, Any] = {
        "mode": mode,
        "num_samples": n,
        "num_images": [len(real), len(fake)],
        "reference": _dataset_spec(dataset),
        "random_state": random_state,
        "generated_as": "uint8",
    }
    return real, fake, spec


def _inception_pair(real: np.ndarray, fake: np.ndarray, *, batch_size: int, device: Any,
                    weights: Any, network: Any) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """Inception (or stand-in network) features of both sets, the metric name and spec."""
    from disbench.metrics.inception import FID_WEIGHTS_NAME, inception_features

    kw = {"batch_size": min(batch_size, 100), "device": device}
    if network is not None:
        kw["network"] = network
    else:
        kw["weights"] = weights
    f_real = inception_features(real, **kw)
    f_fake = inception_features(fake, **kw)
    if network is None:
        return f_real, f_fake, "fid", {"features": "inception_v3_pool3",
                                       "weights": FID_WEIGHTS_NAME}
    return f_real, f_fake, "fd_" + type(network).__name__.lower(), {
        "features": type(network).__name__}


def _classifier_pair(dataset: Any, real: np.ndarray, fake: np.ndarray, *, batch_size: int,
                     device: Any, config: fc.ClassifierConfig | None,
                     ) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """Feature-classifier features of both sets, the metric name and spec."""
    clf, info = fc.get_feature_classifier(dataset, config, device=device)
    f_real = fc.classifier_features(clf, real, batch_size=batch_size, device=device)
    f_fake = fc.classifier_features(clf, fake, batch_size=batch_size, device=device)
    return f_real, f_fake, "fd_classifier", {"features": "feature_classifier_penultimate",
                                             "classifier": info}


def frechet_record(
    model: Any,
    dataset: Any,
    *,
    features: str = "inception",
    mode: str = "generation",
    num_samples: int = DEFAULT_NUM_SAMPLES,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
    weights: Any = None,
    network: Any = None,
    classifier_config: fc.ClassifierConfig | None = None,
) -> dict:
    """A Frechet-distance record: ``fid``/``fid_recon`` (``features="inception"``) or
    ``fd_classifier``/``fd_classifier_recon`` (``features="classifier"``).

    Parameters
    ----------
    mode : {"generation", "reconstruction"}
        Prior samples vs dataset images, or reconstructions vs the same images.
    num_samples : int
        Images in each set (capped at the dataset size).
    weights, network
        Passed to :func:`disbench.metrics.inception.inception_features` (``network``
        replaces Inception; the record is then named ``fd_<network>``, never FID).
    classifier_config : ClassifierConfig, optional
        The feature classifier's configuration (default :class:`ClassifierConfig`).
    """
    if mode not in ("generation", "reconstruction"):
        raise ValueError(f"mode must be 'generation' or 'reconstruction', got {mode!r}")
    if features not in ("inception", "classifier"):
        raise ValueError(f"features must be 'inception' or 'classifier', got {features!r}")
    real, fake, spec = _image_sets(model, dataset, mode, num_samples, random_state, batch_size,
                                   device)
    if features == "inception":
        f_real, f_fake, metric, extra = _inception_pair(
            real, fake, batch_size=batch_size, device=device, weights=weights, network=network)
    else:
        f_real, f_fake, metric, extra = _classifier_pair(
            dataset, real, fake, batch_size=batch_size, device=device, config=classifier_config)
    spec.update(extra)
    spec["feature_dim"] = int(f_real.shape[1])
    if mode == "reconstruction":
        metric += "_recon"
    value = frechet_from_features(f_fake, f_real)
    return _record(metric, value, spec, lower_if_undeclared=network is not None)


def psnr_record(
    model: Any,
    dataset: Any,
    *,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
) -> dict:
    """``psnr``: mean per-image PSNR (dB) of reconstructions on [0, 1] images,
    ``data_range=1.0``, unquantised decoder means vs ``images / 255``."""
    _, real = _subset(dataset, num_samples, random_state)
    per = []
    for start in range(0, len(real), batch_size):
        chunk = real[start:start + batch_size]
        recon = reconstructed_images(model, chunk, batch_size=batch_size, device=device,
                                     quantise=False)
        per.append(psnr_per_image(chunk.astype(np.float64) / 255.0, recon, data_range=1.0))
    per_image = np.concatenate(per)
    return _record("psnr", per_image.mean(), {
        "data_range": 1.0, "aggregate": "mean of per-image PSNR", "num_samples": len(real),
        "reference": _dataset_spec(dataset), "random_state": random_state,
        "num_identical": int(np.isinf(per_image).sum())})


def ood_record(
    model: Any,
    dataset: Any,
    *,
    load_dataset: Callable[..., Any] | None = None,
    num_samples: int | None = None,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
    out_dir: Any = None,
    scorer: str = "auto",
    variant: str | None = None,
) -> dict:
    """``ood_auroc`` for a model trained on ``dataset``: in = the dataset's ``test`` split,
    out = ``OOD_PAIRS[dataset.name]``, same ``source``, both loaded with ``load_dataset``
    (``disbench.datasets.get``; see :func:`.ood.gwae_ood_protocol`).

    ``variant`` is a key of :data:`disbench.metrics.ood.GWAE_OOD_VARIANTS`; the default
    is ``official`` (the authors' ``clu.py`` protocol) for gwae's critic and for models
    that are not 1x28x28, and ``disbench_v1`` for the other scorers
    (:func:`disbench.metrics.ood.default_variant`); the record's spec names it. ``num_samples``
    in-distribution images are scored (all when None); the OoD set has as many for
    ``disbench_v1`` and the official ``ceil(num_samples / 64) * 64`` otherwise.
    """
    from disbench.errors import DisbenchError
    from disbench.metrics.ood import default_scorer, default_variant, gwae_ood_protocol

    name = getattr(dataset, "name", None)
    if name not in OOD_PAIRS:
        raise DisbenchError(
            f"ood_auroc has no out-of-distribution set for dataset {name!r}; it is defined for "
            f"{', '.join(sorted(OOD_PAIRS))} (or call disbench.metrics.ood.gwae_ood_protocol "
            f"with in_dataset/out_dataset)"
        )
    if load_dataset is None:
        raise DisbenchError("ood_auroc loads its in- and out-of-distribution sets: pass "
                            "load_dataset= (e.g. disbench.datasets.get)")
    out_name, out_split = OOD_PAIRS[name]
    scorer = default_scorer(model) if scorer == "auto" else scorer
    variant = default_variant(scorer, model) if variant is None else variant
    return gwae_ood_protocol(
        model, load_dataset=load_dataset, source=getattr(dataset, "source", "auto"),
        in_dataset=name, in_split="test", out_dataset=out_name, out_split=out_split,
        variant=variant, scorer=scorer, num_in=num_samples,
        num_out=num_samples if variant == "disbench_v1" else None,
        random_state=random_state, batch_size=batch_size, device=device, out_dir=out_dir,
    )


# ----------------------------------------------------------------------------- evaluators
# ``num_test`` is the number of images in each compared set (capped at the dataset size);
# the seed is the evaluation seed itself (these metrics draw with numpy/torch generators
# seeded by it, not from the named streams).
def _frechet_evaluator(features: str, mode: str) -> Callable[[EvalContext], list[dict]]:
    def evaluate(ctx: EvalContext) -> list[dict]:
        return [frechet_record(ctx.model, ctx.dataset, features=features, mode=mode,
                               num_samples=ctx.num_test, random_state=ctx.random_state,
                               batch_size=ctx.batch_size, device=ctx.device)]

    evaluate.__doc__ = f"Frechet distance of {features} features, {mode} vs the dataset images."
    return evaluate


_FRECHET = {  # evaluator (and record) name -> (features, mode, needs)
    "fid": ("inception", "generation", ("images", "prior_sampler")),
    "fid_recon": ("inception", "reconstruction", ("images", "decoder")),
    "fd_classifier": ("classifier", "generation", ("labels", "prior_sampler")),
    "fd_classifier_recon": ("classifier", "reconstruction", ("labels", "decoder")),
}
_FRECHET_NAMES = frozenset(_FRECHET)
for _name, (_features, _mode, _needs) in _FRECHET.items():
    register_evaluator(_name, records=[Record(_name, higher_is_better=False)], needs=_needs)(
        _frechet_evaluator(_features, _mode))


@register_evaluator("psnr", records=[Record("psnr", higher_is_better=True)],
                    needs=("images", "decoder"))
def _evaluate_psnr(ctx: EvalContext) -> list[dict]:
    """``psnr``: mean per-image reconstruction PSNR, data_range 1.0."""
    return [psnr_record(ctx.model, ctx.dataset, num_samples=ctx.num_test,
                        random_state=ctx.random_state, batch_size=ctx.batch_size,
                        device=ctx.device)]


@register_evaluator("ood_auroc", records=[Record("ood_auroc", higher_is_better=True)],
                    needs=("images", "ood_pair", "ood_score", "load_dataset"))
def _evaluate_ood_auroc(ctx: EvalContext) -> list[dict]:
    """``ood_auroc``: see :func:`ood_record`; ``ctx.out_dir`` (a run folder) receives the
    ``roc_<out dataset>.npz`` curve when given."""
    return [ood_record(ctx.model, ctx.dataset, load_dataset=ctx.load, num_samples=ctx.num_test,
                       variant=ctx.options.ood_variant,
                       random_state=ctx.random_state, batch_size=ctx.batch_size,
                       device=ctx.device, out_dir=ctx.out_dir)]
