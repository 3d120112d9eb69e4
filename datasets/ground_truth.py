"""Ground-truth factor datasets: every image is one cell of a full grid of factors.

:class:`GroundTruthDataset` is the dataset object of ``dsprites`` and ``shapes3d`` (see
:class:`~disbench.datasets.contract.GroundTruthData`). The images are stored (or
rendered) in row-major order of the factor grid, last factor fastest, so the index of a
factor row is a mixed-radix number and no lookup table is needed.

``images`` is a uint8 array-like of shape (N, C, H, W) with values in 0..255: a numpy
array, an ``np.memmap``, or a :class:`RenderedImages` (a lazy view that renders the
requested rows on demand; it supports integer, slice and integer-array indexing and
``np.asarray``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from disbench.errors import check_random_state, random_integers


class RenderedImages:
    """A lazy uint8 image array of shape ``shape`` whose rows are rendered on demand.

    ``render(indices) -> uint8 (n, C, H, W)`` produces the rows of the given flat
    indices. Indexing with an int, a slice, or an integer array (first axis only, optionally
    followed by further indices applied to the result) renders just those rows;
    ``np.asarray(obj)`` renders everything (for a large grid that is many GB).
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, shape: tuple[int, ...], render: Callable[[np.ndarray], np.ndarray]):
        self.shape = tuple(int(s) for s in shape)
        self._render = render

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        n = self.shape[0]
        if isinstance(key, slice):
            out = self._render(np.arange(n, dtype=np.int64)[key])
        elif np.isscalar(key) or (isinstance(key, np.ndarray) and key.ndim == 0):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for {n} images")
            out = self._render(np.array([i % n], dtype=np.int64))[0]
            return out[rest] if rest else out
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            if idx.dtype.kind not in "iu":
                raise IndexError(f"images can be indexed by int, slice or int array, not {idx.dtype}")
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"index out of range for {n} images")
            out = self._render(np.where(idx < 0, idx + n, idx).astype(np.int64).ravel())
            out = out.reshape(idx.shape + out.shape[1:])
        if not rest:
            return out
        lead = out.ndim - len(self.shape) + 1  # axes produced by the first index
        return out[(slice(None),) * lead + rest]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"RenderedImages(shape={self.shape}, dtype=uint8)"


class GroundTruthDataset:
    """Images indexed by a full grid of discrete factors (row-major, last factor fastest).

    Subclasses set the class attributes ``factor_names``, ``factor_sizes``, ``binary``,
    ``image_shape`` and may override :meth:`render` (used when ``images`` is lazy) or
    :meth:`sample_observations_from_factors`.

    Parameters
    ----------
    images : array-like
        uint8 (N, C, H, W), values 0..255, N = prod(factor_sizes); a numpy array, a memmap
        or a :class:`RenderedImages`.
    source : {"official", "synthetic"}
    split : str
    fingerprint : str
        Identifies the exact data (file checksum, or ``synthetic-<version>-seed<k>``).
    """

    name: str = ""
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] = (1, 64, 64)
    binary: bool = False

    def __init__(self, images: Any, *, source: str, split: str, fingerprint: str):
        n = int(np.prod(self.factor_sizes))
        shape = tuple(images.shape)
        if shape != (n, *self.image_shape):
            raise ValueError(
                f"images must have shape {(n, *self.image_shape)} for {self.name}, got {shape}"
            )
        if np.dtype(images.dtype) != np.uint8:
            raise ValueError(f"images must be uint8, got {images.dtype}")
        self.images = images
        self.source = source
        self.split = split
        self.fingerprint = fingerprint
        self._factors: np.ndarray | None = None

    # ------------------------------------------------------------------ grid arithmetic
    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def strides(self) -> np.ndarray:
        """Mixed-radix place values: ``index = factors @ strides``."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    @property
    def factors(self) -> np.ndarray:
        """int64 (N, K): the factor classes of every image, in storage order."""
        if self._factors is None:
            grids = np.indices(self.factor_sizes, dtype=np.int64)
            self._factors = grids.reshape(self.num_factors, -1).T.copy()
            self._factors.setflags(write=False)
        return self._factors

    def check_factors(self, factors: Any, argname: str = "factors") -> np.ndarray:
        """Validate a (n, K) integer array of factor classes; return it as int64.

        Raises ValueError naming ``argname`` on a wrong shape, dtype or out-of-range value.
        """
        arr = np.asarray(factors)
        k = self.num_factors
        if arr.ndim != 2 or arr.shape[1] != k:
            raise ValueError(
                f"{argname} must have shape (n, {k}) (one column per factor "
                f"{', '.join(self.factor_names)}), got {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) \
                    and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            elif arr.size:
                raise ValueError(f"{argname} must hold integer factor classes, got {arr.dtype}")
            else:
                arr = arr.astype(np.int64)
        arr = arr.astype(np.int64, copy=False)
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        bad = (arr < 0) | (arr >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{argname}[{row}, {col}] = {arr[row, col]} is out of range for factor "
                f"{self.factor_names[col]!r} (valid classes 0..{sizes[col] - 1})"
            )
        return arr

    def index_of(self, factors: Any) -> np.ndarray:
        """Flat int64 indices of the images with the given (n, K) factor classes."""
        arr = self.check_factors(factors)
        return arr @ self.strides

    def factors_of(self, indices: Any) -> np.ndarray:
        """int64 (n, K) factor classes of the given flat indices (inverse of index_of)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must be in 0..{len(self) - 1}")
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    def sample_factors(self, n: int, random_state: Any) -> np.ndarray:
        """int64 (n, K): each factor drawn uniformly and independently.

        ``random_state``: an int seed (a new ``RandomState``, as disentanglement_lib's
        datasets draw from), a ``RandomState`` or a ``Generator`` (drawn from as it is);
        see :func:`disbench.errors.check_random_state`. The factors are drawn one column
        at a time, first factor first.
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        rng = check_random_state(random_state, "random_state")
        cols = [random_integers(rng, s, n) for s in self.factor_sizes]
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.int64)

    def sample_pairs(self, n: int, k: Any, random_state: Any
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` pairs of factor rows differing in exactly the factors of ``changed``
        (``k``: how many; see :func:`disbench.datasets.pairs.sample_pair_factors`)."""
        from disbench.datasets.pairs import sample_pair_factors

        return sample_pair_factors(self.factor_sizes, n, k, random_state)

    #: ``render(factors) -> uint8 images``, a staticmethod on twins that render on demand
    #: (then drawn straight from the factors, without the flat-index round trip), or None
    render_factors: Any = None

    def sample_observations_from_factors(self, factors: Any,
                                         random_state: Any = None) -> np.ndarray:
        """uint8 (n, C, H, W) images of the given factor classes.

        The images are a deterministic function of the factors, so nothing is drawn from
        ``random_state``; it is still checked (an int, ``RandomState`` or ``Generator``)
        so that a caller's mistake fails here as it would on a stochastic dataset.
        """
        if random_state is not None:
            check_random_state(random_state, "random_state")
        f = self.check_factors(factors)
        if self.render_factors is not None and isinstance(self.images, RenderedImages):
            return self.render_factors(f)
        return self.images_at(f @ self.strides)

    def images_at(self, idx: np.ndarray) -> np.ndarray:
        """uint8 (n, C, H, W) images at flat indices, read in sorted order (fast on memmaps)."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.images, RenderedImages):
            return self.images[idx]
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx), *self.image_shape), dtype=np.uint8)
        out[order] = self.images[idx[order]]
        return out

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {self.name} with {n} images")
        i %= n
        img = torch.from_numpy(np.array(self.images[i], dtype=np.uint8))
        fac = torch.from_numpy(self.factors_of([i])[0])
        return img, fac

    def tensor(self, device: Any = "cpu") -> Any:
        """The whole uint8 (N, C, H, W) array as one torch tensor on ``device``."""
        import torch

        arr = self.images
        if isinstance(arr, RenderedImages):
            # Render in chunks straight into the tensor on ``device``: never a second full
            # copy in host memory (the whole shapes3d twin is 5.9 GB).
            out = torch.empty(arr.shape, dtype=torch.uint8, device=device)
            step = 16384
            for s in range(0, len(arr), step):
                out[s:s + step] = torch.from_numpy(arr[s:s + step]).to(device)
            return out
        return torch.from_numpy(np.array(arr, dtype=np.uint8)).to(device)  # memmaps are read-only

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, source={self.source!r}, "
                f"split={self.split!r}, n={len(self)}, "
                f"factors={dict(zip(self.factor_names, self.factor_sizes, strict=True))})")


def cached_layout(path: Path, source: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The converted random-access images at ``path`` (memory-mapped) if they were made
    from ``source`` (recorded in the ``.json`` stamp beside them) and have ``shape``."""
    stamp = path.with_suffix(".json")
    if not (path.exists() and stamp.exists()):
        return None
    try:
        if json.loads(stamp.read_text()).get("source") != source:
            return None
    except (json.JSONDecodeError, OSError):
        return None
    arr = np.load(path, mmap_mode="r")
    return arr if arr.shape == tuple(shape) else None


def grid_factors(sizes: Sequence[int]) -> np.ndarray:
    """int64 (prod(sizes), K): the row-major grid of factor classes, last fastest."""
    grids = np.indices(tuple(sizes), dtype=np.int64)
    return grids.reshape(len(sizes), -1).T.copy()
