"""disentanglement_lib's dSprites variants: ``dsprites_noshape``, ``color_dsprites``,
``noisy_dsprites``, ``scream_dsprites``.

Each is a view of the dSprites grid (:mod:`disbench.datasets.dsprites`, whose official file,
converted layout and twin it shares: everything lives in ``$DISBENCH_DATA/dsprites``), as
google-research/disentanglement_lib ``disentanglement_lib/data/ground_truth/named_data.py``
builds them from ``data/ground_truth/dsprites.py``:

``dsprites_noshape`` -- ``DSprites([2, 3, 4, 5])``
    factors scale (6), orientation (40), posX (32), posY (32); shape is a nuisance, drawn
    uniformly for every observation (``SplitDiscreteStateSpace.sample_all_factors``, one
    ``randint(3)`` per observation). ``images`` holds all 737,280 binary images.
``color_dsprites``, ``noisy_dsprites``, ``scream_dsprites`` -- ``ColorDSprites``,
``NoisyDSprites``, ``ScreamDSprites`` with ``[1, 2, 3, 4, 5]``
    the five dSprites factors; 3x64x64 observations from a stochastic observation model
    (:mod:`disbench.datasets.observation`: colour U(0.5, 1)^3 per image; noise
    ``min(sprite + U(0, 1), 1)`` per pixel and channel; a random 64x64 crop of the Scream
    thumbnail mixed with a random colour, ``(crop + U(0, 1)^3) / 2``, sprite pixels
    inverted). The grid's sixth factor (colour, one value) draws nothing from the state
    (numpy's ``randint(1)`` consumes no randomness), so a ``RandomState`` passed to
    :meth:`sample_observations_from_factors` gives disentanglement_lib's stream.

Where the randomness comes from
    :meth:`sample_observations_from_factors` draws it from the ``random_state`` passed in
    (what the metrics use): fresh noise on every call, reproducible from the state. The
    training view ``images[i]`` cannot take a state (the trainer gathers stored rows), so it
    is one fixed realisation per grid cell, drawn by a counter-based hash of (variant, cell)
    (:func:`disbench.datasets.observation.hashed_uniform`): the same on every device, in
    every run and ensemble member. disentanglement_lib trains on fresh draws
    (``util.tf_data_set_from_ground_truth_data`` calls ``sample_observations`` per example);
    with 737,280 cells the training view here is one realisation of each, a difference to
    keep in mind when comparing numbers.

The Scream
    ``The_Scream.jpg`` from Wikimedia Commons (Edvard Munch, 1893; public domain), the
    address disentanglement_lib's ``bin/dlib_download_data`` fetches. No checksum is
    published for it (and none could be sourced offline), so its SHA-256 is pinned on first
    use (:mod:`disbench.datasets.download`) and part of the fingerprint. It is shrunk with
    ``PIL.Image.thumbnail((350, 274))`` with the installed Pillow's defaults;
    disentanglement_lib calls ``thumbnail((350, 274, 3))``, which Pillow 13 rejects (it wants
    a 2-tuple), and the filter of ``thumbnail`` depends on the Pillow version (NEAREST
    before 2.5.0, BICUBIC since, says Pillow's docstring). The twin is a procedural texture (sky bands, fjord, bridge in
    the painting's palette) of :data:`TWIN_SCREAM_SHAPE`, 274 x 220: the official
    thumbnail's height is 274 for a portrait image, its width could not be verified offline
    (about 220 for the painting's 73.5 x 91 cm).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.datasets import dsprites as dsp
from disbench.datasets import observation as obs
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile, pinned
from disbench.datasets.entry import DOWNLOAD, PROGRESS_OFFICIAL, DatasetSpec
from disbench.datasets.ground_truth import GroundTruthDataset, RenderedImages, gather
from disbench.datasets.registry import register
from disbench.errors import DisbenchError
from disbench.paths import dataset_dir

log = logging.getLogger(__name__)

SCREAM = OfficialFile(
    name="The_Scream.jpg",
    url="https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg",
    checksum_source="",  # none published: pinned on first use
)
THUMBNAIL = (350, 274)
TWIN_SCREAM_SHAPE = (274, 220)
_DLIB = "https://github.com/google-research/disentanglement_lib"
_DLIB_CITATION = ("Francesco Locatello et al. Challenging Common Assumptions in the "
                  "Unsupervised Learning of Disentangled Representations. ICML 2019 "
                  "(variants of: " + dsp.DSprites.citation + ")")


# ------------------------------------------------------------------------------ the Scream
def read_scream(path: str | Path) -> np.ndarray:
    """float64 (H, W, 3) in [0, 1]: the Scream thumbnail (at most 350 x 274, aspect kept).

    Raises :class:`DisbenchError` naming the file when it is not an RGB image or its
    thumbnail is smaller than 65 x 65 (a 64x64 crop needs one offset at least).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.thumbnail(THUMBNAIL)
            mode, arr = im.mode, np.asarray(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise DisbenchError(f"{path}: not a readable image ({exc}); delete it and its "
                            f"{path.name}.sha256 pin and download it again from "
                            f"{SCREAM.url}") from None
    if mode != "RGB" or arr.ndim != 3 or min(arr.shape[:2]) < 65:
        raise DisbenchError(f"{path}: a {mode} image whose thumbnail is {arr.shape}, expected "
                            f"RGB of at least 65 x 65 pixels; not the Scream image of "
                            f"{SCREAM.url}")
    return arr.astype(np.float64) / 255.0


def twin_scream(shape: tuple[int, int] = TWIN_SCREAM_SHAPE) -> np.ndarray:
    """float64 (H, W, 3) in [0, 1]: the procedural stand-in for the Scream (deterministic)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = y / h, x / w
    horizon = 0.42 + 0.06 * np.sin(5.0 * x + 1.0)
    swirl = np.sin(28.0 * y + 4.0 * np.sin(7.0 * x) + 2.0 * np.sin(11.0 * y * x))
    sky = np.stack([0.85 + 0.1 * swirl, 0.45 + 0.15 * swirl, 0.2 + 0.05 * swirl], -1)
    water = np.stack([0.2 + 0.1 * swirl, 0.3 + 0.1 * swirl, 0.55 + 0.15 * swirl], -1)
    img = np.where((y < horizon)[..., None], sky, water)
    bridge = np.abs(y - (1.05 - 0.8 * x)) < 0.08
    img[bridge] = [0.55, 0.38, 0.22]
    return np.clip(img, 0.0, 1.0)


# ------------------------------------------------------------------------------ variants
class DSpritesVariant(DatasetSpec, GroundTruthDataset):
    """A view of the dSprites grid (registry entry and dataset object); subclasses set the
    factors (``latent`` columns of the 5-factor grid), ``image_shape`` and the model."""

    kind: ClassVar[str] = "ground_truth"
    default_split: ClassVar[str] = "train"
    homepage = _DLIB
    licence = dsp.DSprites.licence
    citation = _DLIB_CITATION
    files: ClassVar[tuple[OfficialFile, ...]] = (dsp.OFFICIAL,)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (dsp.OFFICIAL.name,)}
    split_sizes: ClassVar[dict[str, int]] = {"train": dsp.NUM_IMAGES}
    options: ClassVar[dict[str, Option]] = {"download": DOWNLOAD, "progress": PROGRESS_OFFICIAL}
    storage_sizes = dsp.DSprites.factor_sizes
    storage_names = dsp.DSprites.factor_names
    render_factors = staticmethod(dsp.render)
    #: the observation model: "none", "color", "noise" or "scream"
    model: ClassVar[str] = "none"
    #: the key of the training view's fixed realisation
    key: ClassVar[int] = 0

    def __init__(self, base: Any, *, source: str, split: str, fingerprint: str,
                 scream: np.ndarray | None = None) -> None:
        self.scream_image = scream
        images = base if self.model == "none" else RenderedImages(
            (len(base), *self.image_shape), self._fixed_rows)
        GroundTruthDataset.__init__(self, images, source=source, split=split,
                                    fingerprint=fingerprint)
        self.base = base

    # --- the cache is dSprites' own ------------------------------------------------------
    @classmethod
    def folder(cls) -> Path:
        return dataset_dir(dsp.DSprites.name)

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        return dict(zip(cls.factor_names, cls.factor_sizes, strict=True))

    @classmethod
    def twin_cached(cls) -> list[str]:
        return dsp.DSprites.twin_cached()

    # --- loaders ---------------------------------------------------------------------------
    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = True,
                      progress: bool = True) -> DSpritesVariant:
        """The view over the verified official dSprites file (converted once, shared)."""
        split = cls.check_split(split)
        base = dsp.DSprites.load_official(split, download=download, progress=progress)
        return cls(base.images, source="official", split=split,
                   fingerprint=f"{base.fingerprint}-{cls.name}")

    @classmethod
    def load_synthetic(cls, split: str | None = None) -> DSpritesVariant:
        """The view over the dSprites twin (rendered on demand unless prepared)."""
        split = cls.check_split(split)
        base = dsp.DSprites.load_synthetic(split)
        return cls(base.images, source="synthetic", split=split,
                   fingerprint=f"{base.fingerprint}-{cls.name}")

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          **options: Any) -> list[Path]:
        return dsp.DSprites._prepare_official(splits, progress=progress, **options)

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        return dsp.DSprites._prepare_synthetic(splits, progress=progress, **options)

    # --- the observation model ---------------------------------------------------------------
    def observe(self, base: np.ndarray, rng: Any = None) -> np.ndarray:
        """disentanglement_lib's observation model on sprites ``base``, noise from ``rng``."""
        n = len(base)
        if self.model == "color":
            return obs.color(base, obs.draw_color(rng, n))
        if self.model == "noise":
            return obs.noise(base, obs.draw_noise(rng, n))
        if self.model == "scream":
            h, w = self.scream_image.shape[:2]
            return obs.scream(base, self.scream_image, *obs.draw_scream(rng, n, h, w))
        return base

    def _fixed_rows(self, idx: np.ndarray) -> np.ndarray:
        """The training view: rows ``idx`` with their fixed realisation of the model (in
        blocks of 1024 rows: the per-pixel noise of one block is 100 MB of float64)."""
        idx = np.asarray(idx, dtype=np.int64).ravel()
        if len(idx) > 1024:
            return np.concatenate([self._fixed_rows(idx[s:s + 1024])
                                   for s in range(0, len(idx), 1024)])
        base = gather(self.base, idx)
        if self.model == "color":
            return obs.color(base, obs.fixed_color(self.key, idx))
        if self.model == "noise":
            return obs.noise(base, obs.fixed_noise(self.key, idx))
        h, w = self.scream_image.shape[:2]
        return obs.scream(base, self.scream_image, *obs.fixed_scream(self.key, idx, h, w))


@register("dsprites_noshape")
class DSpritesNoShape(DSpritesVariant):
    """dSprites with shape as a nuisance: scale(6), orientation(40), posX(32), posY(32)."""

    summary = ("dSprites with shape as a nuisance (disentanglement_lib's DSprites([2, 3, 4, "
               "5])): 737,280 binary 64x64; 4 factors")
    factor_names = ("scale", "orientation", "posX", "posY")
    factor_sizes = (6, 40, 32, 32)
    latent = (1, 2, 3, 4)
    image_shape = observation_shape = (1, 64, 64)
    binary = True
    twin_summary = "the dsprites twin (dsprites1), shape drawn per observation"


class _StochasticVariant(DSpritesVariant):
    factor_names = dsp.DSprites.factor_names
    factor_sizes = dsp.DSprites.factor_sizes
    image_shape = observation_shape = (3, 64, 64)
    binary = False
    stochastic = True


@register("color_dsprites")
class ColorDSprites(_StochasticVariant):
    """dSprites in a random colour U(0.5, 1)^3 per observation (disentanglement_lib)."""

    summary = ("dSprites, the sprite in a random colour U(0.5, 1)^3 per observation "
               "(disentanglement_lib's ColorDSprites): 3x64x64; 5 factors")
    model = "color"
    key = 1
    twin_summary = "the dsprites twin (dsprites1) with the same colour model"


@register("noisy_dsprites")
class NoisyDSprites(_StochasticVariant):
    """dSprites on uniform noise, min(sprite + U(0, 1), 1) (disentanglement_lib)."""

    summary = ("dSprites on per-pixel uniform noise, min(sprite + U(0, 1), 1) "
               "(disentanglement_lib's NoisyDSprites): 3x64x64; 5 factors")
    model = "noise"
    key = 2
    twin_summary = "the dsprites twin (dsprites1) with the same noise model"


@register("scream_dsprites")
class ScreamDSprites(_StochasticVariant):
    """dSprites on a random crop of the Scream, sprite inverted (disentanglement_lib)."""

    summary = ("dSprites on a random 64x64 crop of Munch's The Scream mixed with a random "
               "colour, sprite inverted (disentanglement_lib's ScreamDSprites): 3x64x64; "
               "5 factors")
    model = "scream"
    key = 3
    files = (dsp.OFFICIAL, SCREAM)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (dsp.OFFICIAL.name, SCREAM.name)}
    licence = (dsp.DSprites.licence + "; The Scream (Edvard Munch, 1893): public domain "
               "(Wikimedia Commons)")
    twin_summary = (f"the dsprites twin (dsprites1) on a procedural {TWIN_SCREAM_SHAPE[0]} x "
                    f"{TWIN_SCREAM_SHAPE[1]} texture in the painting's palette")

    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = True,
                      progress: bool = True) -> ScreamDSprites:
        split = cls.check_split(split)
        base = dsp.DSprites.load_official(split, download=download, progress=progress)
        (_, path) = cls.official_paths(split, download=download, progress=progress)
        sha = pinned(SCREAM, cls.files_folder()).sha256 or "unpinned"
        return cls(base.images, source="official", split=split, scream=read_scream(path),
                   fingerprint=f"{base.fingerprint}-{cls.name}-scream-{sha[:12]}")

    @classmethod
    def load_synthetic(cls, split: str | None = None) -> ScreamDSprites:
        split = cls.check_split(split)
        base = dsp.DSprites.load_synthetic(split)
        return cls(base.images, source="synthetic", split=split, scream=twin_scream(),
                   fingerprint=f"{base.fingerprint}-{cls.name}-texture1")

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          **options: Any) -> list[Path]:
        paths = super()._prepare_official(splits, progress=progress, **options)
        read_scream(cls.files_folder() / SCREAM.name)  # its structure, before it is used
        return paths
