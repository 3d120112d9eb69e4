"""A small classifier trained on a labelled dataset, whose penultimate layer is a feature
space for Frechet distances when Inception features are not available or not meaningful
(offline use, MNIST-family 28x28 grey images).

The score is :func:`fd_classifier`: the Frechet distance (Heusel et al. 2017, Eq. 6; see
:mod:`disbench.metrics.fid`) between Gaussian fits of these features. It is **not FID** (FID
means InceptionV3 pool3 features) and is never reported under that name; its values are
only comparable between runs that use the same classifier, identified by the ``classifier``
entry of the record's spec (dataset fingerprint, configuration, held-out accuracy).

Network: conv(32, 3x3) - ReLU - maxpool 2 - conv(64, 3x3) - ReLU - maxpool 2 - adaptive
average pool to 4x4 - linear(``feature_dim``) - ReLU [features] - linear(num_classes); any
(C, H, W) input. Trained with Adam and cross-entropy on the dataset's labels, holding out
a fraction to report accuracy, deterministically from ``seed`` on CPU.

Cache: ``$DISBENCH_DATA/feature_classifiers/<dataset>-<fingerprint>.pt`` where
``<fingerprint>`` hashes the dataset's own fingerprint, source, split, image shape, number of
classes and the classifier configuration, stored through :mod:`disbench.metrics.cached_net`
(a ``.sha256`` file beside it, checked before ``torch.load(..., weights_only=True)``). A
missing file is trained and stored; a file that fails the check is an error naming it and
how to rebuild it (it is never silently replaced).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from disbench.errors import resolve_device
from disbench.metrics.fid import fid as _frechet_from_features
from torch import nn

from . import cached_net
from ._device import module_device

__all__ = [
    "ClassifierConfig",
    "FeatureClassifier",
    "cache_path",
    "classifier_features",
    "fd_classifier",
    "get_feature_classifier",
    "train_feature_classifier",
]


FORMAT_VERSION = 1
#: What rebuilds a cache file (quoted in the errors of :mod:`.cached_net`).
REBUILD = "disbench evaluate RUN_DIR --metrics fd_classifier (it trains the classifier again)"


@dataclass(frozen=True)
class ClassifierConfig:
    """Training configuration of the feature classifier (part of its cache key)."""

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    feature_dim: int = 128
    holdout: float = 0.1
    seed: int = 0
    version: int = 1  # bump when the architecture or training procedure changes


class FeatureClassifier(nn.Module):
    """Small conv classifier; :meth:`features` gives the penultimate (``feature_dim``) layer."""

    def __init__(self, in_channels: int, num_classes: int, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of images ``x`` (float, [0, 1], (N, C, H, W))."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _labelled(dataset: Any) -> tuple[Any, np.ndarray, int]:
    from disbench.errors import DisbenchError

    labels = getattr(dataset, "labels", None)
    num_classes = getattr(dataset, "num_classes", None)
    if labels is None or num_classes is None:
        raise DisbenchError(
            f"fd_classifier needs a labelled dataset (mnist, fashion_mnist, omniglot, ...); "
            f"{getattr(dataset, 'name', type(dataset).__name__)!r} has no labels -- use fid"
        )
    return dataset.images, np.asarray(labels, dtype=np.int64), int(num_classes)


def _to_float(chunk: Any, device: torch.device) -> torch.Tensor:
    t = chunk if torch.is_tensor(chunk) else torch.from_numpy(np.array(chunk))  # writable copy
    if t.dtype == torch.uint8:
        return t.to(device=device, dtype=torch.float32) / 255.0
    return t.to(device=device, dtype=torch.float32)


def _batch(images: Any, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    return _to_float(images[idx], device)


def train_feature_classifier(
    dataset: Any, config: ClassifierConfig | None = None, *, device: Any = None,
    progress: bool = False,
) -> tuple[FeatureClassifier, dict]:
    """Train the classifier on ``dataset``'s labels; returns ``(model in eval mode, info)``.

    ``info`` holds ``holdout_accuracy`` (on the held-out fraction, at most 10,000 images),
    ``num_train``, ``num_holdout``, the config and the dataset's identity.
    """
    cfg = config or ClassifierConfig()
    images, labels, num_classes = _labelled(dataset)
    n = len(labels)
    if n < 2:
        raise ValueError(f"dataset has {n} images; the feature classifier needs at least 2")
    dev = resolve_device(device, "device")
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(n)
    n_hold = min(round(cfg.holdout * n), 10_000, n - 1)
    hold, train = perm[:n_hold], perm[n_hold:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = FeatureClassifier(images.shape[1], num_classes, cfg.feature_dim)
    net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps: Any = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"feature classifier ({getattr(dataset, 'name', '')})")
    y_all = torch.as_tensor(labels)
    for _ in steps:
        idx = train[rng.integers(0, len(train), size=min(cfg.batch_size, len(train)))]
        x = _batch(images, idx, dev)
        loss = nn.functional.cross_entropy(net(x), y_all[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    acc = float("nan")
    if n_hold:
        correct = 0
        with torch.no_grad():
            for start in range(0, n_hold, 512):
                idx = hold[start:start + 512]
                pred = net(_batch(images, idx, dev)).argmax(1).cpu()
                correct += int((pred == y_all[idx]).sum())
        acc = correct / n_hold
    info = {
        "dataset": getattr(dataset, "name", None),
        "split": getattr(dataset, "split", None),
        "source": getattr(dataset, "source", None),
        "dataset_fingerprint": getattr(dataset, "fingerprint", None),
        "image_shape": list(images.shape[1:]),
        "num_classes": num_classes,
        "num_train": len(train),
        "num_holdout": int(n_hold),
        "holdout_accuracy": acc,
        "config": dataclasses.asdict(cfg),
    }
    return net, info


def _fingerprint(dataset: Any, cfg: ClassifierConfig) -> str:
    images, _, num_classes = _labelled(dataset)
    key = {
        "dataset_fingerprint": getattr(dataset, "fingerprint", None),
        "source": getattr(dataset, "source", None),
        "split": getattr(dataset, "split", None),
        "n": len(images),
        "image_shape": list(images.shape[1:]),
        "num_classes": num_classes,
        "config": dataclasses.asdict(cfg),
        "format_version": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(dataset: Any, config: ClassifierConfig | None = None) -> Path:
    """``$DISBENCH_DATA/feature_classifiers/<dataset>-<fingerprint>.pt``."""
    from disbench.paths import data_root

    cfg = config or ClassifierConfig()
    name = getattr(dataset, "name", None) or "dataset"
    return data_root() / "feature_classifiers" / f"{name}-{_fingerprint(dataset, cfg)}.pt"


def _load(path: Path, device: torch.device) -> tuple[FeatureClassifier, dict] | None:
    blob = cached_net.load(path, rebuild=REBUILD, format_version=FORMAT_VERSION)
    if blob is None:
        return None
    info = blob["info"]
    net = FeatureClassifier(info["image_shape"][0], info["num_classes"],
                            info["config"]["feature_dim"])
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval(), info


def get_feature_classifier(
    dataset: Any, config: ClassifierConfig | None = None, *, device: Any = None,
    cache: bool = True, progress: bool = False,
) -> tuple[FeatureClassifier, dict]:
    """The feature classifier of ``dataset``: loaded from the cache, else trained and cached.

    Returns ``(model in eval mode, info)``; ``info["cache_file"]`` names the cache file.
    ``device`` None: CUDA when available, else the CPU.
    """
    cfg = config or ClassifierConfig()
    dev = resolve_device(device, "device")
    path = cache_path(dataset, cfg)
    if cache:
        loaded = _load(path, dev)
        if loaded is not None:
            return loaded
    net, info = train_feature_classifier(dataset, cfg, device=dev, progress=progress)
    info["cache_file"] = path.name
    if cache:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        cached_net.save(path, {"format_version": FORMAT_VERSION, "state_dict": state,
                               "info": info})
    return net, info


def classifier_features(
    classifier: FeatureClassifier, images: Any, *, batch_size: int = 500, device: Any = None,
) -> np.ndarray:
    """Penultimate features (N, feature_dim), float64, of uint8 (0..255) or float ([0, 1])
    images (N, C, H, W); independent of ``batch_size``."""
    if len(images) == 0:
        raise ValueError("images is empty")
    dev = module_device(classifier, device)
    was_training = classifier.training
    classifier.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = _to_float(images[start:start + batch_size], dev)
                chunks.append(classifier.features(x).double().cpu().numpy())
    finally:
        classifier.train(was_training)
    return np.concatenate(chunks)


def fd_classifier(features_a: Any, features_b: Any) -> float:
    """Frechet distance between Gaussian fits of two sets of classifier features.

    Same computation as :func:`disbench.metrics.fid.fid` (float64 means, ``ddof=1``
    covariances, stable square root), under its own name because the features come from
    disbench's :class:`FeatureClassifier`, not Inception. Lower is better.
    """
    return _frechet_from_features(features_a, features_b)

