"""Cars3D (Reed et al., NeurIPS 2015): 183 car models x 24 azimuths x 4 elevations, 64x64 RGB.

Official file
    ``nips2015-analogy-data.tar.gz`` (Scott Reed's "Deep Visual Analogy-Making" data), from
    ``http://www.scottreed.info/files/`` (the address of disentanglement_lib's
    ``bin/dlib_download_data`` and disent), with the University of Michigan address as a
    mirror (commented as the older address in carpedm20/visual-analogy-tensorflow's download
    script; whether it still serves the file could not be checked offline). No checksum is published; we pin disent's "full" MD5
    ``4e866a7919c1beedf53964e6f7a23686`` (nmichlo/disent
    ``disent/dataset/data/_groundtruth__cars3d.py``). The archive holds ``data/cars/``
    with 183 ``car_*_mesh.mat`` MATLAB files, each ``im`` uint8 (128, 128, 3, 24, 4):
    azimuth (24) then elevation (4) on the last two axes (both references read them so:
    disentanglement_lib ``np.einsum("abcde->deabc", im)`` then elevation = index % 4;
    disent ``transpose([5, 4, 0, 1, 2, 3])``), plus ``list.txt``, ``data/sprites`` and
    ``shapes48.mat`` (ignored). Licence: none stated in disentanglement_lib or disent; see
    the homepage and cite the paper.

Factors elevation (4), azimuth (24), object type (183); images in that row-major order.
    The object type is the position of the file among the **sorted** ``car_*_mesh.mat``
    names. disentanglement_lib numbers them in the order of ``gfile.ListDirectory`` (the
    unsorted directory listing, which differs between file systems, so its object indices
    are not reproducible across machines); disent in the order of ``data/cars/list.txt``
    (whether that list is sorted could not be checked offline).

64x64
    Each 128x128 view is shrunk with PIL's Lanczos filter: disentanglement_lib's
    ``pic.thumbnail((64, 64, 3), ANTIALIAS)``, which for a square image is
    ``resize((64, 64), LANCZOS)`` (Pillow 13 gives identical pixels for the two).

The archive is read as a stream (members are checked: nothing is extracted, no path can
escape) and converted once into a stamped uint8 (N, 3, 64, 64) ``.npy``
(:mod:`disbench.datasets.cache`).

Twin (``source="synthetic"``)
    183 procedural cars (body length and height, cabin, wheel size and body colour drawn
    per model from a fixed seed) seen from 24 azimuths (15 degrees apart: the body's
    apparent length and the visible side change) and 4 elevations (the roof shows more from
    above), 128x128 on white, shrunk like the official views. It renders on demand;
    ``prepare --source synthetic`` writes the official archive layout and parses it back.
"""
from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.download import OfficialFile
from disbench.datasets.grid import GridDataset
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

OFFICIAL = OfficialFile(
    name="nips2015-analogy-data.tar.gz",
    url="http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
    md5="4e866a7919c1beedf53964e6f7a23686",
    mirrors=("http://www-personal.umich.edu/~reedscot/files/nips2015-analogy-data.tar.gz",),
    checksum_source="md5: nmichlo/disent disent/dataset/data/_groundtruth__cars3d.py ('full')",
)
NUM_CARS = 183
_MEMBER = re.compile(r"^(?:\./)?data/cars/(car_[^/]*_mesh\.mat)$")


def _resize(views: np.ndarray) -> np.ndarray:
    """uint8 (n, 128, 128, 3) -> uint8 (n, 3, 64, 64), PIL Lanczos."""
    from PIL import Image

    out = np.empty((len(views), 3, 64, 64), np.uint8)
    for i, v in enumerate(views):
        im = Image.fromarray(np.ascontiguousarray(v)).resize((64, 64), Image.Resampling.LANCZOS)
        out[i] = np.asarray(im).transpose(2, 0, 1)
    return out


def _car_members(tf: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    """The ``car_*_mesh.mat`` members, checked (regular files, no escaping names)."""
    members = []
    for m in tf.getmembers():
        name = m.name
        if name.startswith("/") or ".." in Path(name).parts:
            raise DisbenchError(f"{path}: member {name!r} would escape the archive; not the "
                                f"official Cars3D archive")
        if _MEMBER.match(name):
            if not m.isfile():
                raise DisbenchError(f"{path}: {name} is not a regular file")
            members.append(m)
    return members


def convert_tar(path: str | Path, dest: str | Path, *, progress: bool = True) -> list[str]:
    """Parse a Cars3D archive into uint8 (4 * 24 * NUM_CARS, 3, 64, 64) at ``dest`` (rows in
    the order elevation, azimuth, object; objects by sorted file name). Returns the names.

    Raises :class:`DisbenchError` naming the file and member for an unreadable archive, a
    wrong number of cars, or an ``im`` of another shape or dtype.
    """
    from tqdm.auto import tqdm

    path, dest = Path(path), Path(dest)
    try:
        tf = tarfile.open(path, "r:*")  # noqa: SIM115 -- closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DisbenchError(f"{path}: not a readable tar archive ({exc}); delete it and "
                            f"download it again from {OFFICIAL.url}") from None
    with tf:
        try:
            members = _car_members(tf, path)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DisbenchError(f"{path}: the archive is damaged ({exc})") from None
        names = sorted(_MEMBER.match(m.name).group(1) for m in members)
        if len(names) != NUM_CARS or len(set(names)) != len(names):
            raise DisbenchError(f"{path}: {len(names)} distinct data/cars/car_*_mesh.mat files, "
                                f"expected {NUM_CARS}; not the official Cars3D archive")
        position = {n: i for i, n in enumerate(names)}
        with atomic_path(dest) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(4 * 24 * NUM_CARS, 3, 64, 64))
            for m in tqdm(members, desc=f"converting {path.name}", disable=not progress,
                          leave=False):
                name = _MEMBER.match(m.name).group(1)
                im = _read_im(tf, m, path)
                # im[..., az, el] -> rows (el, az, obj) of the grid
                views = im.transpose(4, 3, 0, 1, 2).reshape(96, 128, 128, 3)
                el, az = np.divmod(np.arange(96), 24)
                out[(el * 24 + az) * NUM_CARS + position[name]] = _resize(views)
            out.flush()
            del out
    return names


def _read_im(tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> np.ndarray:
    import scipy.io

    try:
        data = tf.extractfile(m).read()
        im = scipy.io.loadmat(io.BytesIO(data))["im"]
    except (KeyError, ValueError, TypeError, OSError, EOFError, tarfile.TarError) as exc:
        raise DisbenchError(f"{path}: member {m.name} is not a MATLAB file with 'im' "
                            f"({type(exc).__name__}: {exc})") from None
    if im.shape != (128, 128, 3, 24, 4) or im.dtype != np.uint8:
        raise DisbenchError(f"{path}: {m.name} 'im' is {im.dtype} {im.shape}, expected uint8 "
                            f"(128, 128, 3, 24, 4)")
    return im


# ------------------------------------------------------------------------------ the twin
def _car_table(n: int = 183) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2015)
    return {"length": rng.uniform(0.55, 0.8, n), "width": rng.uniform(0.25, 0.35, n),
            "height": rng.uniform(0.15, 0.25, n), "cabin": rng.uniform(0.3, 0.6, n),
            "cabin_h": rng.uniform(0.1, 0.2, n), "wheel": rng.uniform(0.07, 0.12, n),
            "colour": rng.uniform(0.1, 0.9, (n, 3))}


_CARS = _car_table()


def render_cars(f: np.ndarray, side: int = 128) -> np.ndarray:
    """uint8 (n, side, side, 3) twin views for (n, 3) factors (elevation, azimuth, object)."""
    f = np.asarray(f, dtype=np.int64)
    t = ((np.arange(side) + 0.5) / side * 2.0 - 1.0) * 0.6
    y, x = np.meshgrid(t + 0.05, t, indexing="ij")
    c = {k: v[f[:, 2] % len(v)] for k, v in _CARS.items()}
    phi = np.deg2rad(15.0 * f[:, 1])
    lift = 0.08 + 0.07 * f[:, 0]  # how much roof shows from above
    half_len = 0.5 * (c["length"] * np.abs(np.cos(phi)) + c["width"] * np.abs(np.sin(phi)))
    e = lambda a: a[:, None, None]  # per-image broadcast
    body = (np.abs(x) <= e(half_len)) & (y >= e(-c["height"] + 0.1)) & (y <= 0.1 + 0 * x)
    roof = (np.abs(x) <= e(half_len)) & (y >= e(-c["height"] - lift + 0.1)) & \
        (y < e(-c["height"] + 0.1))
    cab = (np.abs(x - e(0.1 * np.cos(phi))) <= e(c["cabin"] * half_len)) & \
        (y >= e(-c["height"] - c["cabin_h"] + 0.1)) & (y < e(-c["height"] + 0.1))
    wheel_x = 0.7 * half_len
    wheels = np.zeros_like(body)
    for sgn in (-1.0, 1.0):
        wheels |= ((x - e(sgn * wheel_x)) ** 2 + (y - 0.12) ** 2) <= e(c["wheel"]) ** 2
    side_light = 0.6 + 0.4 * np.abs(np.cos(phi))
    img = np.ones((len(f), side, side, 3))
    col = c["colour"][:, None, None, :]
    img = np.where(roof[..., None], np.clip(col * 1.25, 0, 1), img)
    img = np.where(cab[..., None], 0.35 + 0.3 * col, img)
    img = np.where(body[..., None], col * side_light[:, None, None, None], img)
    img = np.where(wheels[..., None], 0.12, img)
    return np.rint(img * 255.0).astype(np.uint8)


def write_twin_tar(path: Path, *, progress: bool = True) -> Path:
    """Write the twin in the official archive layout (183 ``.mat`` files and ``list.txt``)."""
    import scipy.io
    from tqdm.auto import tqdm

    names = [f"car_{i:03d}_mesh" for i in range(NUM_CARS)]
    el, az = np.divmod(np.arange(96), 24)
    with atomic_path(path) as tmp, tarfile.open(tmp, "w:gz", compresslevel=1) as tf:
        _add(tf, "data/cars/list.txt", ("\n".join(names) + "\n").encode())
        for i, name in enumerate(tqdm(names, desc="cars3d twin", disable=not progress,
                                      leave=False)):
            views = render_cars(np.stack([el, az, np.full(96, i)], axis=1))
            im = views.reshape(4, 24, 128, 128, 3).transpose(2, 3, 4, 1, 0)  # (.., az, el)
            buf = io.BytesIO()
            scipy.io.savemat(buf, {"im": np.ascontiguousarray(im)})
            _add(tf, f"data/cars/{name}.mat", buf.getvalue())
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1_449_000_000
    tf.addfile(info, io.BytesIO(data))


@register("cars3d")
class Cars3D(GridDataset):
    """Cars3D: elevation(4), azimuth(24), object type(183; sorted file names), 64x64 RGB."""

    summary = ("Cars3D: 17,568 RGB 64x64 renders of 183 car models; 3 factors (Reed et al. "
               "2015; objects by sorted file name)")
    homepage = "http://www.scottreed.info/"
    licence = ("none stated in disentanglement_lib or disent; see the homepage and cite "
               "the paper")
    citation = ("Scott Reed, Yi Zhang, Yuting Zhang, Honglak Lee. Deep Visual Analogy-Making. "
                "NeurIPS 2015")
    files = (OFFICIAL,)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (OFFICIAL.name,)}
    split_sizes: ClassVar[dict[str, int]] = {"train": 4 * 24 * NUM_CARS}
    factor_names = ("elevation", "azimuth", "object_type")
    factor_sizes = (4, 24, NUM_CARS)
    image_shape = observation_shape = (3, 64, 64)
    binary = False
    twin_version = "cars3d1"
    twin_summary = ("cars3d1: 183 procedural cars (body, cabin, wheels, colour per model) "
                    "from 24 azimuths and 4 elevations, 128x128 shrunk like the official "
                    "views; rendered on demand, 'prepare --source synthetic' writes the "
                    "official archive layout and converts it")

    @staticmethod
    def render_factors(factors: np.ndarray) -> np.ndarray:
        return _resize(render_cars(factors))

    @staticmethod
    def convert_official(paths: list[Path], dest: Path, *, progress: bool) -> Any:
        return convert_tar(paths[0], dest, progress=progress)

    @staticmethod
    def write_twin(folder: Path, *, progress: bool) -> list[Path]:
        return [write_twin_tar(folder / OFFICIAL.name, progress=progress)]
