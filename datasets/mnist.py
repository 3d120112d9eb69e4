"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): 28x28 grey images, 10 classes.

Official data: the four IDX ``.gz`` files per dataset (train 60,000 / test 10,000),
checked by the md5s torchvision publishes and the sha256s TensorFlow Datasets publishes
(sha256 is the one verified), with their magic numbers and counts. Each split loads as
soon as its two files are in the cache (``$DISBENCH_DATA/<name>/``), e.g. only the test
set. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``)
ships the official files recompressed without the gzip name/mtime header; they are
accepted by the sha256 of their decompressed content, so
``disbench datasets import fashion_mnist /usr/share/datasets/fashion-mnist`` works.

Twins (``source="synthetic"``): procedural 28x28 images with the official shapes, dtypes,
split sizes and 10 classes -- stroke-drawn digits (MNIST) and filled garment silhouettes
(Fashion-MNIST), each a random affine warp of one of 24 style variants per class --
written as IDX ``.gz`` into ``$DISBENCH_DATA/<name>/synthetic-v1-seed<k>/`` and read back
by the same parser as the official files.

The twin's files are derived caches: each is stamped with its SHA-256
(:mod:`disbench.datasets.cache`) and checked before it is read; a twin file that fails the
check or does not parse is deleted with a warning naming it and rendered again (never an
advice to download it).

Dataset object: :class:`~disbench.datasets.labelled.LabelledImages` with ``images`` uint8
(N, 1, 28, 28) in 0..255 (ink bright on black, as in the files), ``labels`` int64 (N,),
``num_classes`` 10, ``class_names``.

Views (:mod:`disbench.datasets.views`; options ``size``, ``channels``, ``invert``,
``resize``, default ``resize="pil_bilinear"``):

- the alpha-beta VAE's 32x32 input (iffsid/disentangling-disentanglement
  ``src/models/vae_fashion_mnist.py``, ``getDataLoaders``): ``size=32`` -- PIL's bilinear
  resize of the uint8 image, which is what that loader's ``transforms.Resize(size=(32,
  32))`` does to torchvision's PIL image; its final ``clamp(1e-6, 1 - 1e-6)`` is left to
  the model (:data:`disbench.datasets.views.ALPHA_BETA_CLAMP`);
- GWAE's OoD protocol (ganmodokix/vaetc ``vaetc/data/mnist.py``: ``ToTensor``, repeat to 3
  channels, ``Resize((64, 64))`` on the tensor): ``size=64, channels=3,
  resize="tensor_bilinear"``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from disbench.datasets import glyphs, views
from disbench.datasets.cache import check as check_cache
from disbench.datasets.cache import discard, write_stamp
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile
from disbench.datasets.entry import DOWNLOAD, PROGRESS_OFFICIAL, SEED, DatasetSpec
from disbench.datasets.idx import read_images, read_labels, write_idx_gz
from disbench.datasets.labelled import LabelledImages
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
SPLIT_SIZES = {"train": 60000, "test": 10000}

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_MNIST_MIRRORS = ("http://yann.lecun.com/exdb/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


def _files(base: str, mirrors: tuple[str, ...],
           table: list[tuple[str, str, str, int, str]]) -> tuple[OfficialFile, ...]:
    return tuple(
        OfficialFile(name=name, url=base + name, sha256=sha, md5=md5, size=size,
                     gunzip_sha256=content, mirrors=tuple(m + name for m in mirrors))
        for name, sha, md5, size, content in table
    )


# name, sha256 (TFDS), md5 (torchvision), size, sha256 of the decompressed content
MNIST_FILES = _files(_MNIST_URL, _MNIST_MIRRORS, [
    (_TRAIN_IMAGES, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
     "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422,
     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    (_TRAIN_LABELS, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
     "d53e105ee54ea40749a09fcbcd1e9432", 28881,
     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    (_TEST_IMAGES, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
     "9fb629c4189551a2d022fa330f9573f3", 1648877,
     "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    (_TEST_LABELS, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
     "ec29112dd5afa0611ce80d1b7f02629c", 4542,
     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
])

FASHION_FILES = _files(_FASHION_URL, _FASHION_MIRRORS, [
    (_TRAIN_IMAGES, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
     "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880,
     "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    (_TRAIN_LABELS, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
     "25c81989df183df01b3e8a0aad5dffbe", 29515,
     "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    (_TEST_IMAGES, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
     "bef4ecab320f06d8554ea6380940ec79", 4422102,
     "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    (_TEST_LABELS, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
     "bb300cfdad3c16e7a12a480ee83cd310", 5148,
     "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
])


class _IdxDataset(DatasetSpec):
    """Shared loader of the two IDX datasets; subclasses set files, class names, twin."""

    kind = "labelled"
    default_split = "train"
    splits: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": (_TRAIN_IMAGES, _TRAIN_LABELS), "test": (_TEST_IMAGES, _TEST_LABELS)}
    split_sizes: ClassVar[dict[str, int]] = SPLIT_SIZES
    observation_shape = (1, 28, 28)
    options: ClassVar[dict[str, Option]] = {
        "download": DOWNLOAD, "progress": PROGRESS_OFFICIAL, "seed": SEED, **views.OPTIONS}
    class_names: tuple[str, ...] = ()
    _twin_seed_offset = 0
    _warp: ClassVar[dict[str, Any]] = {}
    _gain: tuple[float, float] = (1.0, 1.0)
    _normalise = False

    _default_view = views.View(size=None, channels=1, invert=False, resize="pil_bilinear")

    @classmethod
    def _view(cls, view: dict[str, Any]) -> views.View:
        return views.make_view(cls.name, 28, cls._default_view, **view)

    @classmethod
    def _read(cls, folder: Any, split: str, source: str, fingerprint: str,
              v: views.View) -> LabelledImages:
        img_name, lab_name = cls.splits[split]
        n = SPLIT_SIZES[split]
        images = read_images(folder / img_name, n)
        labels = read_labels(folder / lab_name, n)
        if images.shape[2:] != (28, 28):
            raise ValueError(f"{folder / img_name}: images are {images.shape[2:]}, not 28x28")
        return LabelledImages(views.apply(images, v), labels, num_classes=10, name=cls.name,
                              split=split, source=source,
                              fingerprint=fingerprint + v.suffix(cls._default_view),
                              class_names=cls.class_names)

    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = False,
                      progress: bool = True, **view: Any) -> LabelledImages:
        """The published IDX files of ``split`` (verified; downloaded if ``download``);
        ``view``: ``size``, ``channels``, ``invert``, ``resize`` (module docstring)."""
        split = cls.check_split(split)
        v = cls._view(view)
        cls.official_paths(split, download=download, progress=progress)
        return cls._read(cls.folder(), split, "official", cls.official_fingerprint(split), v)

    @classmethod
    def load_synthetic(cls, split: str | None = None, *, seed: int = 0,
                       **view: Any) -> LabelledImages:
        """The twin of ``split``, written once as IDX ``.gz`` files (each stamped with its
        SHA-256) and read back; a damaged twin file is rendered again."""
        split = cls.check_split(split)
        view = cls._view(view)
        folder = cls.twin_folder(seed)
        source = cls.twin_fingerprint(seed)
        if not all(check_cache(folder / f, source, f"{cls.name} twin file",
                               "rendering the twin again") for f in cls.splits[split]):
            cls._write_twin(folder, split, seed)
        try:
            return cls._read(folder, split, "synthetic", source, view)
        except DisbenchError as exc:  # stamped, yet unparsable: render it again, once
            for f in cls.splits[split]:
                discard(folder / f, f"{cls.name} twin file {folder / f} cannot be read "
                                    f"({exc}); rendering the twin again")
            cls._write_twin(folder, split, seed)
            return cls._read(folder, split, "synthetic", source, view)

    @classmethod
    def _write_twin(cls, folder: Any, split: str, seed: int) -> None:
        images, labels = cls.render(split, seed)
        img_name, lab_name = cls.splits[split]
        write_idx_gz(folder / lab_name, labels.astype(np.uint8))
        write_idx_gz(folder / img_name, images[:, 0], compresslevel=1)
        for name in (lab_name, img_name):
            write_stamp(folder / name, cls.twin_fingerprint(seed), mode="full")

    @classmethod
    def render(cls, split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The twin of ``split``: uint8 (N, 1, 28, 28) images and int64 (N,) labels."""
        rng = np.random.default_rng([seed, cls._twin_seed_offset, list(cls.splits).index(split)])
        n = SPLIT_SIZES[split]
        templates = cls.templates(np.random.default_rng([seed, cls._twin_seed_offset]))
        variants = templates.shape[0] // 10
        labels = rng.integers(0, 10, n)
        index = labels * variants + rng.integers(0, variants, n)
        theta = glyphs.random_affines(rng, n, **cls._warp)
        x = glyphs.warp_templates(templates, index, theta, 28)
        gain = rng.uniform(*cls._gain, n).astype(np.float32)[:, None, None, None]
        if cls._normalise:  # Fashion-MNIST images are scaled so the brightest pixel is 255
            gain = gain / np.maximum(x.max(axis=(1, 2, 3), keepdims=True), 1e-6)
        return glyphs.to_uint8(np.minimum(x * gain, 1.0)), labels.astype(np.int64)

    @classmethod
    def templates(cls, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


_V = 24          # style variants per class
_TS = 56         # template resolution (twice the output)


def _digit_strokes(d: int, wiggle: np.random.Generator) -> list[np.ndarray]:
    e = glyphs.ellipse_points
    pi = np.pi
    ln = np.array
    s = {
        0: [e(0.5, 0.5, 0.19, 0.31)],
        1: [ln([[0.53, 0.18], [0.48, 0.82]])] + (
            [ln([[0.42, 0.28], [0.53, 0.18]])] if wiggle.random() < 0.5 else []),
        2: [np.concatenate([e(0.5, 0.34, 0.19, 0.16, pi, 2 * pi + 0.7, 16),
                            ln([[0.3, 0.82], [0.72, 0.82]])])],
        3: [e(0.48, 0.33, 0.17, 0.15, -0.9 * pi, 0.5 * pi, 16),
            e(0.48, 0.64, 0.2, 0.18, -0.5 * pi, 0.85 * pi, 18)],
        4: [ln([[0.6, 0.82], [0.6, 0.18], [0.28, 0.62], [0.75, 0.62]])],
        5: [np.concatenate([ln([[0.7, 0.18], [0.37, 0.18], [0.34, 0.46]]),
                            e(0.49, 0.62, 0.2, 0.18, -0.72 * pi, 0.8 * pi, 18)])],
        6: [ln([[0.64, 0.18], [0.47, 0.31], [0.36, 0.5], [0.32, 0.66]]),
            e(0.5, 0.66, 0.18, 0.16)],
        7: [ln([[0.28, 0.2], [0.72, 0.2], [0.43, 0.82]])],
        8: [e(0.5, 0.34, 0.15, 0.15), e(0.5, 0.66, 0.19, 0.17)],
        9: [e(0.5, 0.35, 0.18, 0.16), ln([[0.68, 0.37], [0.62, 0.82]])],
    }[d]
    return [np.asarray(p, dtype=np.float64) for p in s]


def _jitter(points: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    # A smooth per-variant deformation: one random affine plus small per-point noise.
    a = np.eye(2) + rng.normal(0.0, 0.06, (2, 2))
    return (points - 0.5) @ a.T + 0.5 + rng.normal(0.0, sigma, points.shape)


@register("mnist")
class MNIST(_IdxDataset):
    """MNIST handwritten digits (LeCun et al. 1998), train 60,000 / test 10,000."""

    summary = "handwritten digits 0-9, 1x28x28 grey, train 60k / test 10k (LeCun et al. 1998)"
    homepage = "http://yann.lecun.com/exdb/mnist/"
    licence = ("CC BY-SA 3.0 (Yann LeCun and Corinna Cortes hold the copyright; as stated "
               "in the TensorFlow/Keras dataset documentation)")
    citation = ("Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied "
                "to document recognition. Proceedings of the IEEE 86(11), 1998")
    files = MNIST_FILES
    labels_note = "the digit, 0-9 (num_classes 10)"
    class_names = tuple(str(i) for i in range(10))
    twin_summary = ("stroke-drawn digits: 24 style variants per class, random rotation, "
                    "scale, shear, shift and stroke gain; official sizes and IDX .gz files")
    _twin_seed_offset = 1
    _warp: ClassVar[dict[str, Any]] = {"rotation": 0.25, "scale": (0.85, 1.1), "shear": 0.25,
                                       "shift": 0.08, "aspect": 0.15}
    _gain = (1.0, 1.5)

    @classmethod
    def templates(cls, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((10 * _V, 1, _TS, _TS), dtype=np.float32)
        for d in range(10):
            for v in range(_V):
                strokes = [_jitter(s, rng, 0.012) for s in _digit_strokes(d, rng)]
                out[d * _V + v, 0] = glyphs.draw_strokes(strokes, _TS, rng.uniform(0.035, 0.065))
        return out


# Garment outlines in the unit square (x right, y down): polygons, then detail strokes.
_GARMENTS: dict[int, tuple[list[list[tuple[float, float]]], list[list[tuple[float, float]]]]] = {
    0: ([[(0.3, 0.08), (0.42, 0.14), (0.58, 0.14), (0.7, 0.08), (0.95, 0.3), (0.85, 0.42),
          (0.76, 0.35), (0.76, 0.95), (0.24, 0.95), (0.24, 0.35), (0.15, 0.42),
          (0.05, 0.3)]], []),
    1: ([[(0.3, 0.04), (0.7, 0.04), (0.73, 0.96), (0.56, 0.96), (0.5, 0.32), (0.44, 0.96),
          (0.27, 0.96)]], []),
    2: ([[(0.32, 0.08), (0.42, 0.12), (0.58, 0.12), (0.68, 0.08), (0.88, 0.25), (0.97, 0.9),
          (0.83, 0.92), (0.76, 0.4), (0.76, 0.94), (0.24, 0.94), (0.24, 0.4), (0.17, 0.92),
          (0.03, 0.9), (0.12, 0.25)]], []),
    3: ([[(0.38, 0.04), (0.62, 0.04), (0.64, 0.35), (0.82, 0.96), (0.18, 0.96),
          (0.36, 0.35)]], []),
    4: ([[(0.32, 0.04), (0.42, 0.08), (0.58, 0.08), (0.68, 0.04), (0.9, 0.2), (0.98, 0.9),
          (0.84, 0.92), (0.78, 0.4), (0.8, 0.98), (0.2, 0.98), (0.22, 0.4), (0.16, 0.92),
          (0.02, 0.9), (0.1, 0.2)]], [[(0.5, 0.1), (0.5, 0.98)]]),
    5: ([[(0.02, 0.74), (0.98, 0.68), (0.98, 0.8), (0.02, 0.84)]],
        [[(0.1, 0.74), (0.35, 0.45), (0.55, 0.7)], [(0.55, 0.7), (0.75, 0.42), (0.92, 0.68)],
         [(0.3, 0.5), (0.7, 0.48)]]),
    6: ([[(0.32, 0.08), (0.42, 0.1), (0.58, 0.1), (0.68, 0.08), (0.88, 0.25), (0.96, 0.88),
          (0.84, 0.9), (0.77, 0.4), (0.77, 0.95), (0.23, 0.95), (0.23, 0.4), (0.16, 0.9),
          (0.04, 0.88), (0.12, 0.25)]],
        [[(0.4, 0.1), (0.5, 0.24), (0.6, 0.1)], [(0.5, 0.24), (0.5, 0.95)]]),
    7: ([[(0.02, 0.55), (0.35, 0.5), (0.55, 0.34), (0.76, 0.34), (0.98, 0.6), (0.98, 0.78),
          (0.02, 0.78)]], [[(0.02, 0.72), (0.98, 0.72)]]),
    8: ([[(0.08, 0.36), (0.92, 0.36), (0.92, 0.95), (0.08, 0.95)]],
        [list(map(tuple, glyphs.ellipse_points(0.5, 0.36, 0.22, 0.26, np.pi, 2 * np.pi, 12)))]),
    9: ([[(0.15, 0.04), (0.55, 0.04), (0.58, 0.5), (0.95, 0.64), (0.97, 0.9), (0.1, 0.9),
          (0.14, 0.5)]], [[(0.1, 0.84), (0.97, 0.84)]]),
}


@register("fashion_mnist")
class FashionMNIST(_IdxDataset):
    """Fashion-MNIST Zalando article images (Xiao et al. 2017), train 60,000 / test 10,000."""

    summary = "Zalando clothing, 10 classes, 1x28x28 grey, train 60k / test 10k (Xiao et al. 2017)"
    homepage = "https://github.com/zalandoresearch/fashion-mnist"
    licence = "MIT (the repository's LICENSE)"
    citation = ("Han Xiao, Kashif Rasul, Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset "
                "for Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017")
    files = FASHION_FILES
    labels_note = ("the article class (num_classes 10): T-shirt/top, Trouser, Pullover, Dress, "
                   "Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot")
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
    twin_summary = ("filled garment silhouettes with grey level, stripes and detail seams: "
                    "24 style variants per class, small random warps; official sizes and "
                    "IDX .gz files")
    _twin_seed_offset = 2
    _warp: ClassVar[dict[str, Any]] = {"rotation": 0.05, "scale": (0.9, 1.04), "shear": 0.06,
                                       "shift": 0.04, "aspect": 0.1}
    _gain = (1.0, 1.0)
    _normalise = True

    @classmethod
    def templates(cls, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((10 * _V, 1, _TS, _TS), dtype=np.float32)
        yy, _ = glyphs.pixel_centres(_TS)
        for c in range(10):
            polys, seams = _GARMENTS[c]
            for v in range(_V):
                fill = np.zeros((_TS, _TS), dtype=np.float32)
                for p in polys:
                    fill = np.maximum(fill, glyphs.fill_polygon(
                        _jitter(np.asarray(p), rng, 0.008), _TS))
                level = rng.uniform(0.35, 1.0)
                texture = np.ones_like(fill)
                if rng.random() < 0.3:  # stripes
                    texture = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(4, 9) * yy
                                                   + rng.uniform(0, 2 * np.pi))
                img = fill * level * texture
                if seams:
                    ink = glyphs.draw_strokes([_jitter(np.asarray(s), rng, 0.005) for s in seams],
                                              _TS, rng.uniform(0.012, 0.03))
                    seam_level = level * rng.uniform(0.3, 0.6) if c not in (5, 8) else level
                    img = img * (1 - ink) + ink * seam_level
                out[c * _V + v, 0] = img
        return out
