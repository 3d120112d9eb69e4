"""MPI3D (Gondal et al., NeurIPS 2019): ``mpi3d_toy``, ``mpi3d_realistic``, ``mpi3d_real``.

Official files (rr-learning/disentanglement_dataset ``README.md``)
    One NPZ per dataset with the key ``images``, uint8 (1,036,800, 64, 64, 3), the
    row-major grid ``reshape([6, 6, 2, 3, 3, 40, 40, 64, 64, 3])``: object colour (white,
    green, red, blue, brown, olive), object shape (cone, cube, cylinder, hexagonal,
    pyramid, sphere), object size (small, large), camera height (top, center, bottom),
    background colour (purple, sea green, salmon), first and second degree of freedom of
    the robot arm (40 each). Licence CC BY 4.0. Addresses, in order of preference: the
    Hugging Face dataset ``waleedgondal/mpi3d`` (the README's links since April 2025), the
    2024 bucket ``storage.googleapis.com/mpi3d_disentanglement_dataset/data/`` (README commit
    084c4fa, May 2024) and the 2019 bucket
    ``storage.googleapis.com/disentanglement_dataset/Final_Dataset/`` (the README before it).

6 x 6 colours and shapes for all three
    disentanglement_lib's ``data/ground_truth/mpi3d.py`` hard-codes factor sizes
    [4, 4, 2, 3, 3, 40, 40] for toy and realistic (the files of the 2019 challenge) and
    would mis-index the final files, which hold 6 x 6; disbench uses 6 x 6 for all three,
    as the README and disent (``disent/dataset/data/_groundtruth__mpi3d.py``) do.

Checksums
    toy and realistic: disent's "full" MD5s of the 2019 ``Final_Dataset`` files (the same
    file of disent); that the Hugging Face copies are byte-identical could not be checked
    offline (a mismatch is reported naming the MD5's source). real: re-uploaded on
    2025-04-17 after a corruption report (the README commit "Corrected corrupted
    mpi3d_real.npz dataset"), so no earlier checksum applies and none is published: only
    the Hugging Face address is used (the older addresses may serve the corrupted upload),
    the file's structure is verified (key, shape, dtype) and the SHA-256 seen is pinned in
    ``mpi3d_real.npz.sha256`` and printed, so a user can pin it elsewhere.

Never read whole into memory
    About 12.7 GB of pixels. ``np.savez`` stores members uncompressed, so the images are
    memory-mapped in place (the member's data offset is found from its zip local header and
    ``.npy`` header; nothing is copied). A compressed NPZ is converted once, in chunks, into
    a stamped uncompressed ``.npy`` beside it (:mod:`disbench.datasets.cache`). The images
    are exposed channels first, ``images`` a (N, 3, 64, 64) transposed view of the
    (N, 64, 64, 3) map.

Twin (``source="synthetic"``)
    A procedural robot-arm scene per factor row: the background colour, a platform line
    whose height follows the camera height, a grey arm from the base to the object, the
    object (cone, cube, cylinder, hexagonal prism, pyramid or sphere silhouette in one of the
    six colours, two sizes) placed by the two degrees of freedom. It renders on demand;
    ``prepare --source synthetic`` renders all of it into a stamped (N, 64, 64, 3) ``.npy``
    (12.7 GB).
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.cache import write_stamp
from disbench.datasets.download import OfficialFile, pinned
from disbench.datasets.grid import OFFICIAL_LAYOUT, TWIN_LAYOUT, GridDataset
from disbench.datasets.ground_truth import cached_layout
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
                "background_color", "first_dof", "second_dof")
FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)
_HF = "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/"
_B2024 = "https://storage.googleapis.com/mpi3d_disentanglement_dataset/data/"
_B2019 = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/"
_DISENT = "md5: nmichlo/disent disent/dataset/data/_groundtruth__mpi3d.py ('full', 2019 file)"

FILES = {
    "toy": OfficialFile("mpi3d_toy.npz", _HF + "mpi3d_toy.npz",
                        md5="55889cb7c7dfc655d6e0277beee88868", checksum_source=_DISENT,
                        mirrors=(_B2024 + "mpi3d_toy.npz", _B2019 + "mpi3d_toy.npz")),
    "realistic": OfficialFile("mpi3d_realistic.npz", _HF + "mpi3d_realistic.npz",
                              md5="59a6225b88b635365f70c91b3e52f70f", checksum_source=_DISENT,
                              mirrors=(_B2024 + "mpi3d_realistic.npz",
                                       _B2019 + "mpi3d_realistic.npz")),
    "real": OfficialFile("mpi3d_real.npz", _HF + "mpi3d_real.npz"),
}
_CHUNK = 8192


# ------------------------------------------------------------------------------ the npz
def _member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo("images.npy")
    except KeyError:
        keys = ", ".join(n.removesuffix(".npy") for n in zf.namelist()) or "none"
        raise DisbenchError(f"{path}: no key 'images' (keys: {keys}); not an MPI3D npz") from None


def _check_header(shape: tuple, fortran: bool, dtype: np.dtype, path: Path, n: int) -> None:
    if shape != (n, 64, 64, 3) or dtype != np.uint8 or fortran:
        raise DisbenchError(f"{path}: 'images' is {dtype} {shape}"
                            f"{' (Fortran order)' if fortran else ''}, expected uint8 "
                            f"({n}, 64, 64, 3); not the MPI3D file (or a damaged one)")


def _read_npy_header(f: object, path: Path) -> tuple[tuple, bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        return reader(f)
    except ValueError as exc:
        raise DisbenchError(f"{path}: 'images' is not a valid .npy member ({exc})") from None


def npz_images(path: str | Path, n: int) -> np.ndarray | None:
    """uint8 (n, 64, 64, 3) ``images`` of an MPI3D npz, memory-mapped in place; None when
    the member is compressed (convert it with :func:`convert_npz`). Checks key, shape,
    dtype and that the data lie inside the file; errors name the file."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = _member(zf, path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DisbenchError(f"{path}: not a readable npz archive ({exc}); delete it and "
                            f"download it again") from None
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise DisbenchError(f"{path}: damaged zip local header of 'images.npy'")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        shape, fortran, dtype = _read_npy_header(f, path)
        offset = f.tell()
    _check_header(shape, fortran, dtype, path, n)
    if offset + int(np.prod(shape)) > path.stat().st_size:
        raise DisbenchError(f"{path}: 'images' is truncated (the file ends before its data)")
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=shape)


def convert_npz(path: str | Path, dest: str | Path, n: int, *, progress: bool = True) -> None:
    """Stream a compressed npz's ``images`` into an uncompressed (n, 64, 64, 3) ``.npy``."""
    from tqdm.auto import tqdm

    path = Path(path)
    row = 64 * 64 * 3
    with zipfile.ZipFile(path) as zf, zf.open(_member(zf, path)) as f:
        _check_header(*_read_npy_header(f, path), path, n)
        with atomic_path(dest) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(n, 64, 64, 3))
            for s in tqdm(range(0, n, _CHUNK), desc=f"converting {path.name}",
                          disable=not progress, leave=False):
                m = min(_CHUNK, n - s)
                buf = f.read(m * row)
                if len(buf) != m * row:
                    raise DisbenchError(f"{path}: 'images' is truncated after {s} images")
                out[s:s + m] = np.frombuffer(buf, np.uint8).reshape(m, 64, 64, 3)
            out.flush()
            del out


# ------------------------------------------------------------------------------ the twin
_BACKGROUNDS = np.array([(0.5, 0.3, 0.6), (0.18, 0.55, 0.45), (0.98, 0.5, 0.45)])
_COLOURS = np.array([(0.95, 0.95, 0.95), (0.2, 0.7, 0.25), (0.85, 0.15, 0.15),
                     (0.15, 0.3, 0.85), (0.55, 0.35, 0.15), (0.5, 0.5, 0.15)])


def _shape_mask(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray
                ) -> np.ndarray:
    """Silhouettes of the six shapes (cone, cube, cylinder, hexagonal, pyramid, sphere)."""
    ax, ay = np.abs(dx) / r, dy / r  # dy grows downwards
    tri = (ay <= 1) & (ay >= -1) & (ax <= (ay + 1) / 2)
    masks = [tri & (ax <= 0.8 * (ay + 1) / 2 + 0.1),             # cone: narrow triangle
             (ax <= 0.85) & (np.abs(ay) <= 0.85),                # cube: square
             (ax <= 0.6) & (np.abs(ay) <= 1.0),                  # cylinder: tall rectangle
             (ax <= 1.0) & (np.abs(ay) <= 0.87) & (ax + np.abs(ay) * 0.577 <= 1.0),  # hexagon
             tri,                                                # pyramid: wide triangle
             ax ** 2 + ay ** 2 <= 1.0]                           # sphere: disc
    out = np.zeros(dx.shape, bool)
    for k, m in enumerate(masks):
        out |= (shape == k)[:, None, None] & m
    return out


def render(factors: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, 64, 64) twin images for (n, 7) factor classes."""
    f = np.asarray(factors, dtype=np.int64)
    t = np.arange(64) + 0.5
    y, x = np.meshgrid(t, t, indexing="ij")
    e = lambda a: np.asarray(a, dtype=np.float64)[:, None, None]  # per-image broadcast
    horizon = e(20.0 + 10.0 * f[:, 3])
    img = np.broadcast_to(_BACKGROUNDS[f[:, 4]][:, None, None, :], (len(f), 64, 64, 3)).copy()
    img = np.where((y > horizon)[..., None], img * 0.75, img)
    ox = e(10.0 + 44.0 * f[:, 5] / 39.0)
    oy = e(8.0 + 30.0 * f[:, 6] / 39.0 + 4.0 * f[:, 3])
    bx, by = 32.0, 64.0
    seg = np.clip(((x - bx) * (ox - bx) + (y - by) * (oy - by)) /
                  ((ox - bx) ** 2 + (oy - by) ** 2 + 1e-9), 0.0, 1.0)
    arm = np.hypot(x - (bx + seg * (ox - bx)), y - (by + seg * (oy - by))) <= 1.2
    img = np.where(arm[..., None], 0.4, img)
    r = e(np.where(f[:, 2] == 1, 6.5, 4.5))
    obj = _shape_mask(f[:, 1], x - ox, y - oy, r)
    shade = 0.8 + 0.2 * np.clip((ox - x) / r, -1.0, 1.0)
    img = np.where(obj[..., None], _COLOURS[f[:, 0]][:, None, None, :] * shade[..., None], img)
    return np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 3, 1, 2)


# ------------------------------------------------------------------------------ datasets
class MPI3D(GridDataset):
    """An MPI3D dataset: object_color(6), object_shape(6), object_size(2), camera_height(3),
    background_color(3), first_dof(40), second_dof(40); 64x64 RGB."""

    homepage = "https://github.com/rr-learning/disentanglement_dataset"
    licence = "CC BY 4.0 (the repository's README)"
    citation = ("Muhammad Waleed Gondal, Manuel Wuthrich, Djordje Miladinovic, Francesco "
                "Locatello, Martin Breidt, Valentin Volchkov, Joel Akpo, Olivier Bachem, "
                "Bernhard Scholkopf, Stefan Bauer. On the Transfer of Inductive Bias from "
                "Simulation to the Real World: a New Disentanglement Dataset. NeurIPS 2019")
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    image_shape = observation_shape = (3, 64, 64)
    binary = False
    variant: ClassVar[str] = ""
    render_factors = staticmethod(render)

    @classmethod
    def official(cls) -> OfficialFile:
        return FILES[cls.variant]

    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = True,
                      progress: bool = True) -> MPI3D:
        """The verified npz, memory-mapped in place (or converted once if compressed)."""
        split = cls.check_split(split)
        (path,) = cls.official_paths(split, download=download, progress=progress)
        spec = pinned(cls.official(), cls.files_folder())
        fp = f"{spec.algorithm}-{(spec.expected or 'unpinned')[:12]}"
        n = cls.num_images()
        images = npz_images(path, n)
        if images is None:
            dest = cls.folder() / OFFICIAL_LAYOUT
            images = cached_layout(dest, fp, (n, 64, 64, 3))
            if images is None:
                convert_npz(path, dest, n, progress=progress)
                write_stamp(dest, fp, file=path.name)
                images = cached_layout(dest, fp, (n, 64, 64, 3))
        return cls(images.transpose(0, 3, 1, 2), source="official", split=split,
                   fingerprint=fp)

    @classmethod
    def load_synthetic(cls, split: str | None = None) -> MPI3D:
        """The twin: the prepared (N, 64, 64, 3) layout, else rendered on demand."""
        split = cls.check_split(split)
        images = cached_layout(cls.folder() / TWIN_LAYOUT, cls.twin_version,
                               (cls.num_images(), 64, 64, 3),
                               f"the twin renders on demand until 'disbench datasets prepare "
                               f"{cls.name} --source synthetic' caches it again")
        if images is None:
            return super().load_synthetic(split)
        return cls(images.transpose(0, 3, 1, 2), source="synthetic", split=split,
                   fingerprint=cls.twin_fingerprint())

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool, **options: object
                          ) -> list[Path]:
        super()._prepare_official(splits, progress=progress, **options)
        return [cls.files_folder() / cls.official().name]

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool, **options: object
                           ) -> list[Path]:
        """Render the whole twin into the stamped (N, 64, 64, 3) layout."""
        from tqdm.auto import tqdm

        cls.load_options("synthetic", options)
        del splits
        dest, n = cls.folder() / TWIN_LAYOUT, cls.num_images()
        with atomic_path(dest) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(n, 64, 64, 3))
            for s in tqdm(range(0, n, _CHUNK), desc=f"{cls.name} twin", disable=not progress,
                          leave=False):
                out[s:s + _CHUNK] = cls._render_indices(
                    np.arange(s, min(s + _CHUNK, n))).transpose(0, 2, 3, 1)
            out.flush()
            del out
        write_stamp(dest, cls.twin_version, file="rendered by disbench")
        return [dest]

    @classmethod
    def twin_cached(cls) -> list[str]:
        hit = cached_layout(cls.folder() / TWIN_LAYOUT, cls.twin_version,
                            (cls.num_images(), 64, 64, 3))
        return [] if hit is None else [cls.default_split]


def _register(variant: str, title: str, twin: str) -> type:
    spec = FILES[variant]
    cls = type(f"MPI3D{variant.capitalize()}", (MPI3D,), {
        "__doc__": f"MPI3D {variant}: {title} (6x6 colours and shapes).",
        "summary": f"MPI3D {variant}: 1,036,800 RGB 64x64 {title}; 7 factors (Gondal et al. "
                   f"2019; 6x6 colours and shapes)",
        "variant": variant, "files": (spec,),
        "splits": {"train": (spec.name,)}, "split_sizes": {"train": int(np.prod(FACTOR_SIZES))},
        "twin_version": twin,
        "twin_summary": f"{twin}: a procedural robot-arm scene per factor row; rendered on "
                        f"demand, 'prepare --source synthetic' caches it (~12.7 GB)",
    })
    return register(f"mpi3d_{variant}")(cls)


MPI3DToy = _register("toy", "simplistic renders", "mpi3d1")
MPI3DRealistic = _register("realistic", "realistic renders", "mpi3d1")
MPI3DReal = _register("real", "camera recordings of the real platform", "mpi3d1")
