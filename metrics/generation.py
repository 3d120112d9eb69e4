"""Model-level generation, reconstruction and OoD evaluations, registered as evaluators.

Records (``{"metric", "value", "higher_is_better", "version", "spec"}``):

========================  =============================================================  ======
``fid``                   Frechet distance of InceptionV3 pool3 features (Heusel et al.    lower
                          2017): ``num_samples`` prior samples vs as many dataset images
``fid_recon``             same, reconstructions ``decode(encode(x))`` vs the images x      lower
``fd_classifier``         Frechet distance in the penultimate layer of disbench's          lower
                          feature classifier (:mod:`.feature_classifier`); *not* FID
``fd_classifier_recon``   same for reconstructions                                         lower
``psnr``                  mean per-image PSNR of reconstructions, ``data_range=1.0`` on    higher
                          images in [0, 1] (:func:`disbench.metrics.psnr.psnr`)
``ood_auroc``             ROC AUC of the model's OoD score, in = the dataset's test        higher
                          split, out = :data:`OOD_PAIRS` (the GWAE protocol for MNIST)
========================  =============================================================  ======

Generated and reconstructed images are quantised to uint8 before feature extraction, as the
standard FID pipeline does by reading PNG files; real images are the dataset's uint8 pixels.
Both sets are drawn with ``random_state`` (dataset subset without replacement; prior samples
from a ``torch.Generator`` seeded with it). Sequence data (N, T, C, H, W) is scored frame by
frame. FID is reported only for Inception features: without the ``fid`` extra or the
weights the ``fid`` evaluators raise the error that says how to get them; ``fd_classifier``
is the offline alternative for labelled sets.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from disbench.metrics import feature_classifier as fc
from disbench.metrics.evaluators import register_evaluator
from disbench.metrics.fid import fid as frechet_from_features
from disbench.metrics.psnr import psnr_per_image

__all__ = [
    "HIGHER_IS_BETTER",
    "OOD_PAIRS",
    "frechet_record",
    "generated_images",
    "ood_record",
    "psnr_record",
    "reconstructed_images",
]

VERSION = "1"
DEFAULT_NUM_SAMPLES = 5000

HIGHER_IS_BETTER: dict[str, bool] = {
    "fid": False,
    "fid_recon": False,
    "fd_classifier": False,
    "fd_classifier_recon": False,
    "psnr": True,
    "ood_auroc": True,
}

#: in-distribution dataset -> (out-of-distribution dataset, its split)
OOD_PAIRS: dict[str, tuple[str, str]] = {
    "mnist": ("omniglot", "evaluation"),  # Nakagawa et al. 2023 (GWAE)
    "fashion_mnist": ("mnist", "test"),  # Nalisnick et al. 2019
}


# ----------------------------------------------------------------------------- helpers
def _device(model: Any, device: Any) -> Any:
    import torch

    if device is not None:
        return torch.device(device)
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


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

    dev = _device(model, device)
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

    dev = _device(model, device)
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


# ----------------------------------------------------------------------------- records
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
    from disbench.metrics.inception import FID_WEIGHTS_NAME, inception_features

    if mode not in ("generation", "reconstruction"):
        raise ValueError(f"mode must be 'generation' or 'reconstruction', got {mode!r}")
    if features not in ("inception", "classifier"):
        raise ValueError(f"features must be 'inception' or 'classifier', got {features!r}")
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
    if features == "inception":
        kw = {"batch_size": min(batch_size, 100), "device": device}
        if network is not None:
            kw["network"] = network
        else:
            kw["weights"] = weights
        f_real = inception_features(real, **kw)
        f_fake = inception_features(fake, **kw)
        if network is None:
            metric = "fid"
            spec["features"] = "inception_v3_pool3"
            spec["weights"] = FID_WEIGHTS_NAME
        else:
            metric = "fd_" + type(network).__name__.lower()
            spec["features"] = type(network).__name__
    else:
        clf, info = fc.get_feature_classifier(dataset, classifier_config, device=device)
        f_real = fc.classifier_features(clf, real, batch_size=batch_size, device=device)
        f_fake = fc.classifier_features(clf, fake, batch_size=batch_size, device=device)
        metric = "fd_classifier"
        spec["features"] = "feature_classifier_penultimate"
        spec["classifier"] = info
    spec["feature_dim"] = int(f_real.shape[1])
    if mode == "reconstruction":
        metric += "_recon"
    value = frechet_from_features(f_fake, f_real)
    return {"metric": metric, "value": value, "higher_is_better": False, "version": VERSION,
            "spec": spec}


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
    return {
        "metric": "psnr",
        "value": float(per_image.mean()),
        "higher_is_better": True,
        "version": VERSION,
        "spec": {"data_range": 1.0, "aggregate": "mean of per-image PSNR",
                 "num_samples": len(real), "reference": _dataset_spec(dataset),
                 "random_state": random_state, "num_identical": int(np.isinf(per_image).sum())},
    }


def ood_record(
    model: Any,
    dataset: Any,
    *,
    num_samples: int | None = None,
    random_state: int = 0,
    batch_size: int = 256,
    device: Any = None,
    out_dir: Any = None,
    scorer: str = "auto",
) -> dict:
    """``ood_auroc`` for a model trained on ``dataset``: in = the dataset's ``test`` split,
    out = ``OOD_PAIRS[dataset.name]``, same ``source`` (see :func:`.ood.gwae_ood_protocol`)."""
    from disbench.errors import DisbenchError
    from disbench.metrics.ood import gwae_ood_protocol

    name = getattr(dataset, "name", None)
    if name not in OOD_PAIRS:
        raise DisbenchError(
            f"ood_auroc has no out-of-distribution set for dataset {name!r}; it is defined for "
            f"{', '.join(sorted(OOD_PAIRS))} (or call disbench.metrics.ood.gwae_ood_protocol "
            f"with in_dataset/out_dataset)"
        )
    out_name, out_split = OOD_PAIRS[name]
    return gwae_ood_protocol(
        model, source=getattr(dataset, "source", "auto"), in_dataset=name, in_split="test",
        out_dataset=out_name, out_split=out_split, scorer=scorer, num_in=num_samples,
        num_out=num_samples, random_state=random_state, batch_size=batch_size, device=device,
        out_dir=out_dir,
    )


# ----------------------------------------------------------------------------- evaluators
# Evaluators take the options of disbench.metrics.evaluate; ``num_test`` is the number of
# images in each compared set (capped at the dataset size), options they do not use
# (num_train, codes) are accepted and ignored.
def evaluate_fid(model: Any, dataset: Any, *, num_test: int = DEFAULT_NUM_SAMPLES,
                 random_state: int = 0, batch_size: int = 256, device: Any = None,
                 **_: Any) -> list[dict]:
    """``fid``: Inception FID of prior samples vs dataset images."""
    return [frechet_record(model, dataset, features="inception", mode="generation",
                           num_samples=num_test, random_state=random_state,
                           batch_size=batch_size, device=device)]


def evaluate_fid_recon(model: Any, dataset: Any, *, num_test: int = DEFAULT_NUM_SAMPLES,
                       random_state: int = 0, batch_size: int = 256, device: Any = None,
                       **_: Any) -> list[dict]:
    """``fid_recon``: Inception FID of reconstructions vs the images."""
    return [frechet_record(model, dataset, features="inception", mode="reconstruction",
                           num_samples=num_test, random_state=random_state,
                           batch_size=batch_size, device=device)]


def evaluate_fd_classifier(model: Any, dataset: Any, *, num_test: int = DEFAULT_NUM_SAMPLES,
                           random_state: int = 0, batch_size: int = 256, device: Any = None,
                           **_: Any) -> list[dict]:
    """``fd_classifier``: Frechet distance in the feature classifier's space (samples)."""
    return [frechet_record(model, dataset, features="classifier", mode="generation",
                           num_samples=num_test, random_state=random_state,
                           batch_size=batch_size, device=device)]


def evaluate_fd_classifier_recon(model: Any, dataset: Any, *,
                                 num_test: int = DEFAULT_NUM_SAMPLES, random_state: int = 0,
                                 batch_size: int = 256, device: Any = None,
                                 **_: Any) -> list[dict]:
    """``fd_classifier_recon``: the same for reconstructions."""
    return [frechet_record(model, dataset, features="classifier", mode="reconstruction",
                           num_samples=num_test, random_state=random_state,
                           batch_size=batch_size, device=device)]


def evaluate_psnr(model: Any, dataset: Any, *, num_test: int = DEFAULT_NUM_SAMPLES,
                  random_state: int = 0, batch_size: int = 256, device: Any = None,
                  **_: Any) -> list[dict]:
    """``psnr``: mean per-image reconstruction PSNR, data_range 1.0."""
    return [psnr_record(model, dataset, num_samples=num_test, random_state=random_state,
                        batch_size=batch_size, device=device)]


def evaluate_ood_auroc(model: Any, dataset: Any, *, num_test: int | None = None,
                       random_state: int = 0, batch_size: int = 256, device: Any = None,
                       out_dir: Any = None, **_: Any) -> list[dict]:
    """``ood_auroc``: see :func:`ood_record`; ``out_dir`` (a run folder) receives the
    ``roc_<out dataset>.npz`` curve when given."""
    return [ood_record(model, dataset, num_samples=num_test, random_state=random_state,
                       batch_size=batch_size, device=device, out_dir=out_dir)]


EVALUATOR_FUNCTIONS = {
    "fid": evaluate_fid,
    "fid_recon": evaluate_fid_recon,
    "fd_classifier": evaluate_fd_classifier,
    "fd_classifier_recon": evaluate_fd_classifier_recon,
    "psnr": evaluate_psnr,
    "ood_auroc": evaluate_ood_auroc,
}


def _registered(fn: Any) -> Any:
    """Adapt an ``evaluate_*`` function to the evaluator registry's ``(model, dataset, ctx)``."""

    def evaluator(model: Any, dataset: Any, ctx: Any) -> list[dict]:
        return fn(model, dataset, num_test=ctx.num_test, random_state=ctx.random_state,
                  batch_size=ctx.batch_size, device=ctx.device, out_dir=ctx.out_dir)

    evaluator.__doc__ = fn.__doc__
    return evaluator


for _name, _fn in EVALUATOR_FUNCTIONS.items():
    register_evaluator(_name)(_registered(_fn))
