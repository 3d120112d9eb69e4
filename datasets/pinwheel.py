"""``pinwheel``: the 2-D "pinwheel" clusters of the alpha-beta VAE's clustering experiment.

Source: iffsid/disentangling-disentanglement (Mathieu et al., ICML 2019; commit 3396d40),
``scripts/pinwheel.m`` (Ryan P. Adams' generator, 2008) called by
``scripts/gen_pinwheel_small.sh`` as ``pinwheel(0.1, 0.3, 4, 100, 0.25)`` for the training
and, with the same parameters, the test set; ``src/models/datasets.py`` ``PinwheelDataset``
reads them (variant ``small``) and ``src/models/vae_pinwheel.py`` trains on them.

The generator, as ``pinwheel.m`` writes it (arguments ``radial_std, tangential_std,
num_classes, num_per_class, rate``):

- ``rads = linspace(0, 2 pi, num_classes + 1)`` without its last value (equidistant arms);
- ``features = randn(N, 2) * diag([tangential_std, radial_std]) + [1, 0]`` with
  ``N = num_classes * num_per_class``. The file scales the first column by its
  *tangential_std* argument and the second by *radial_std*, so with the official call the
  first (radial, centred at 1) coordinate has std 0.3 and the second 0.1;
- labels in blocks, ``num_per_class`` of class 1, then of class 2, ... (0-based here);
- ``angles = rads(labels) + rate * exp(features(:, 1))``; each row vector is multiplied on
  the right by ``[cos a, -sin a; sin a, cos a]``, i.e. ``(f1 cos a + f2 sin a,
  -f1 sin a + f2 cos a)``.

There are **no official files**: the authors' script runs MATLAB and saves the ``.mat``
files locally, and nothing is published. ``source="official"`` is therefore an error;
``synthetic`` (what ``auto`` picks) is this generator with numpy's ``default_rng`` seeded
from the ``seed`` option (MATLAB's ``randn`` stream cannot be reproduced), 400 training and
400 test points as the official call.

Observations. disbench keeps every dataset as uint8 arrays converted per batch to
``x / 255``, so a point ``(u, v)`` is stored as a (2, 1, 1) "image" quantised on the
window ``[-WINDOW, WINDOW]``: ``round((u + WINDOW) / (2 WINDOW) * 255)`` (a step of
``2 WINDOW / 255`` = 0.0196, against a tangential std of 0.1; points outside the window,
about one in 10^6 at radius > 2.5, are clipped). :func:`to_points` maps ``x / 255`` back to
coordinates; ``points`` keeps the exact float64 values.

Factor: the arm (cluster label) ``arm`` with 4 classes, the only generative factor that the
experiment scores against. Pinwheel is not a full grid (each arm holds many points):
``factors`` are the stored labels, ``index_of`` gives the first stored point of each row's
arm (so ``factors[index_of(f)] == f``), and ``sample_observations_from_factors(f, rng)``
draws fresh points of those arms from ``rng`` (the generator conditioned on the label), so
a metric can draw as many evaluation points as it asks for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.contract import Option
from disbench.datasets.entry import SEED, DatasetSpec
from disbench.datasets.registry import register
from disbench.errors import DisbenchError, check_random_state, random_integers

#: ``pinwheel.m``'s arguments in ``gen_pinwheel_small.sh`` (radial_std, tangential_std as
#: named there; see the module docstring for which column each scales)
RADIAL_STD = 0.1
TANGENTIAL_STD = 0.3
NUM_CLASSES = 4
NUM_PER_CLASS = 100
RATE = 0.25
#: half-width of the quantisation window of the stored uint8 coordinates
WINDOW = 2.5
SPLIT_SIZES = {"train": NUM_CLASSES * NUM_PER_CLASS, "test": NUM_CLASSES * NUM_PER_CLASS}


def pinwheel(radial_std: float, tangential_std: float, num_classes: int, num_per_class: int,
             rate: float, random_state: Any) -> tuple[np.ndarray, np.ndarray]:
    """``pinwheel.m`` in numpy: float64 points (N, 2) and int64 labels (N,), in class blocks."""
    rng = check_random_state(random_state, "random_state")
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), num_per_class)
    return arm_points(labels, rng, radial_std=radial_std, tangential_std=tangential_std,
                      num_classes=num_classes, rate=rate), labels


def arm_points(labels: Any, rng: Any, *, radial_std: float = RADIAL_STD,
               tangential_std: float = TANGENTIAL_STD, num_classes: int = NUM_CLASSES,
               rate: float = RATE) -> np.ndarray:
    """Fresh float64 points (n, 2) of the arms ``labels`` (n,), drawn from ``rng``."""
    labels = np.asarray(labels, dtype=np.int64)
    rads = np.linspace(0.0, 2.0 * np.pi, num_classes + 1)[:-1]
    # randn(N, 2) fills column-major in MATLAB: the first column is drawn first
    noise = rng.standard_normal((2, len(labels))).T
    feats = noise * np.array([tangential_std, radial_std]) + np.array([1.0, 0.0])
    angles = rads[labels] + rate * np.exp(feats[:, 0])
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([feats[:, 0] * c + feats[:, 1] * s, -feats[:, 0] * s + feats[:, 1] * c],
                    axis=1)


def to_uint8(points: Any) -> np.ndarray:
    """uint8 (N, 2, 1, 1) observations of float points (N, 2) on ``[-WINDOW, WINDOW]``."""
    p = np.asarray(points, dtype=np.float64)
    q = np.round((p + WINDOW) / (2.0 * WINDOW) * 255.0)
    return np.clip(q, 0, 255).astype(np.uint8).reshape(len(p), 2, 1, 1)


def to_points(x: Any) -> np.ndarray:
    """Coordinates (N, 2) of observations ``x / 255`` in [0, 1] (N, 2, 1, 1) or (N, 2)."""
    arr = np.asarray(x, dtype=np.float64).reshape(len(x), 2)
    return arr * (2.0 * WINDOW) - WINDOW


class PinwheelData:
    """The pinwheel points of one split (see the module docstring); a ground-truth dataset
    with the single factor ``arm``."""

    name = "pinwheel"
    factor_names: tuple[str, ...] = ("arm",)
    factor_sizes: tuple[int, ...] = (NUM_CLASSES,)
    image_shape: tuple[int, int, int] = (2, 1, 1)
    binary = False

    def __init__(self, points: np.ndarray, labels: np.ndarray, *, source: str, split: str,
                 fingerprint: str) -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.images = to_uint8(self.points)
        self.source, self.split, self.fingerprint = source, split, fingerprint

    @property
    def num_factors(self) -> int:
        return 1

    @property
    def factors(self) -> np.ndarray:
        """int64 (N, 1): the arm of every stored point."""
        return self.labels[:, None]

    def check_factors(self, factors: Any, argname: str = "factors") -> np.ndarray:
        arr = np.asarray(factors)
        if arr.ndim != 2 or arr.shape[1] != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"{argname} must be an integer array of shape (n, 1) (the arm), "
                             f"got {arr.dtype} {arr.shape}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= NUM_CLASSES):
            raise ValueError(f"{argname}: arm classes must lie in 0..{NUM_CLASSES - 1}")
        return arr

    def index_of(self, factors: Any) -> np.ndarray:
        """The index of the first stored point of each row's arm."""
        f = self.check_factors(factors)[:, 0]
        first = np.array([np.flatnonzero(self.labels == k)[0] for k in range(NUM_CLASSES)])
        return first[f].astype(np.int64)

    def sample_factors(self, n: int, random_state: Any) -> np.ndarray:
        """int64 (n, 1) arms drawn uniformly (an int seeds a ``RandomState``)."""
        rng = check_random_state(random_state, "random_state")
        return random_integers(rng, NUM_CLASSES, int(n))[:, None]

    def sample_observations_from_factors(self, factors: Any,
                                         random_state: Any = None) -> np.ndarray:
        """uint8 (n, 2, 1, 1) fresh points of the given arms; the points are random, so
        ``random_state`` is required."""
        f = self.check_factors(factors)
        rng = check_random_state(random_state, "random_state")
        return to_uint8(arm_points(f[:, 0], rng))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        return torch.from_numpy(self.images[int(i)].copy()), int(self.labels[int(i)])

    def tensor(self, device: Any = "cpu") -> Any:
        import torch

        return torch.from_numpy(self.images.copy()).to(device)

    def __repr__(self) -> str:
        return (f"PinwheelData(source={self.source!r}, split={self.split!r}, n={len(self)}, "
                f"factors={{'arm': {NUM_CLASSES}}})")


@register("pinwheel")
class Pinwheel(DatasetSpec):
    """The pinwheel data of Mathieu et al. 2019's clustering experiment (no official files)."""

    summary = "2-D pinwheel clusters (4 arms) of the alpha-beta VAE's clustering experiment"
    kind: ClassVar[str] = "ground_truth"
    homepage = "https://github.com/iffsid/disentangling-disentanglement"
    licence = ("no published data: generated by scripts/pinwheel.m (Ryan P. Adams 2008, "
               "GPL-2.0, as the file states)")
    citation = ("Mathieu, Rainforth, Siddharth & Teh, Disentangling Disentanglement in "
                "Variational Autoencoders, ICML 2019")
    files = ()
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (), "test": ()}
    default_split = "train"
    split_sizes: ClassVar[dict[str, int]] = dict(SPLIT_SIZES)
    observation_shape = (2, 1, 1)
    twin_summary = ("pinwheel.m's generator with the official parameters (0.1, 0.3, 4 arms, "
                    "100 per arm, rate 0.25), numpy default_rng from the seed; points stored "
                    f"as uint8 on [-{WINDOW}, {WINDOW}]")
    options: ClassVar[dict[str, Option]] = {"seed": SEED}

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        return {"arm": NUM_CLASSES}

    @classmethod
    def official_available(cls, split: str | None = None) -> bool:
        cls.check_split(split)
        return False  # nothing is published

    # `split` unused here: the registry-entry interface
    @classmethod
    def load_official(cls, split: str | None = None, **options: Any) -> Any:  # noqa: ARG003
        raise DisbenchError("pinwheel has no official files (the authors' script generates "
                            "them with MATLAB and publishes none); use source='synthetic'")

    @classmethod
    def _cache_file(cls, split: str, seed: int) -> Path:
        return cls.twin_folder(seed) / f"pinwheel_{split}.npz"

    @classmethod
    def load_synthetic(cls, split: str | None = None, seed: int = 0) -> PinwheelData:
        """The generated points of ``split`` (written to the cache once, read back after)."""
        split = cls.check_split(split)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DisbenchError(f"pinwheel: seed must be a non-negative integer, got {seed!r}")
        path = cls._cache_file(split, int(seed))
        if path.is_file():
            with np.load(path) as z:
                points, labels = z["points"], z["labels"]
        else:
            # one stream per split, as the official script makes two independent draws
            rng = np.random.default_rng([int(seed), list(cls.splits).index(split)])
            points, labels = pinwheel(RADIAL_STD, TANGENTIAL_STD, NUM_CLASSES, NUM_PER_CLASS,
                                      RATE, rng)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, points=points, labels=labels)
        return PinwheelData(points, labels, source="synthetic", split=split,
                            fingerprint=cls.twin_fingerprint(int(seed)))

    # `progress` unused here: the DatasetSpec hook's signature
    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,  # noqa: ARG003
                           **options: Any) -> list[Path]:
        seed = cls.load_options("synthetic", options).get("seed", 0)
        for split in splits:
            cls.load_synthetic(split, seed=seed)
        return [cls._cache_file(s, seed) for s in splits]

    @classmethod
    def twin_cached(cls) -> list[str]:
        return [s for s in cls.splits if cls._cache_file(s, 0).is_file()]
