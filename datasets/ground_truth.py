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

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from disbench.datasets.cache import open_array
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
    :meth:`observe` (a stochastic observation model).

    Nuisance factors
        A dataset may store its images on a larger grid than the factors it exposes
        (disentanglement_lib's ``SplitDiscreteStateSpace``, ``data/ground_truth/util.py``):
        ``storage_sizes`` is that grid and ``latent`` the columns exposed as factors; the
        other columns are nuisances, drawn uniformly per observation by
        :meth:`sample_observations_from_factors` (one ``randint`` per nuisance column, in
        column order, as ``sample_all_factors`` draws them). ``images`` then holds all
        ``prod(storage_sizes)`` images and ``factors`` their exposed columns (rows repeat).

    Parameters
    ----------
    images : array-like
        uint8 (N, C, H, W), values 0..255, N = prod(storage grid); a numpy array, a memmap
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
    #: the grid the images are stored on (None: ``factor_sizes``)
    storage_sizes: tuple[int, ...] | None = None
    #: the columns of the storage grid exposed as factors (None: all of them)
    latent: tuple[int, ...] | None = None
    #: names of the storage grid's columns (None: ``factor_names``)
    storage_names: tuple[str, ...] | None = None
    #: whether :meth:`observe` draws from the random state (a stochastic observation model)
    stochastic: bool = False

    def __init__(self, images: Any, *, source: str, split: str, fingerprint: str):
        n = int(np.prod(self.grid_sizes))
        shape = tuple(images.shape)
        if shape != (n, *self.image_shape):
            raise ValueError(
                f"images must have shape {(n, *self.image_shape)} for {self.name}, got {shape}"
            )
        if np.dtype(images.dtype) != np.uint8:
            raise ValueError(f"images must be uint8, got {images.dtype}")
        self.images = images
        #: the stored images the observation model starts from (``images`` unless a
        #: subclass draws its observations from other stored images)
        self.base = images
        self.source = source
        self.split = split
        self.fingerprint = fingerprint
        self._factors: np.ndarray | None = None

    # ------------------------------------------------------------------ grid arithmetic
    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def grid_sizes(self) -> tuple[int, ...]:
        """The storage grid (``factor_sizes`` unless the dataset has nuisance factors)."""
        return tuple(self.storage_sizes or self.factor_sizes)

    @property
    def latent_columns(self) -> tuple[int, ...]:
        """Columns of the storage grid exposed as factors."""
        return tuple(self.latent) if self.latent is not None else tuple(range(len(self.grid_sizes)))

    @property
    def nuisance_columns(self) -> tuple[int, ...]:
        """Columns of the storage grid drawn per observation (none on a plain grid)."""
        return tuple(i for i in range(len(self.grid_sizes)) if i not in self.latent_columns)

    @property
    def strides(self) -> np.ndarray:
        """Mixed-radix place values of the storage grid: ``index = grid_factors @ strides``."""
        sizes = np.asarray(self.grid_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    @property
    def factors(self) -> np.ndarray:
        """int64 (N, K): the factor classes of every image, in storage order."""
        if self._factors is None:
            grids = np.indices(self.grid_sizes, dtype=np.int64)
            full = grids.reshape(len(self.grid_sizes), -1).T
            self._factors = full[:, list(self.latent_columns)].copy()
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

    def index_of(self, factors: Any, nuisance: Any = None) -> np.ndarray:
        """Flat int64 indices of the images with the given (n, K) factor classes.

        On a grid with nuisance factors, ``nuisance`` (n, number of nuisance columns) gives
        their classes; by default class 0 of each.
        """
        arr = self.check_factors(factors)
        full = np.zeros((len(arr), len(self.grid_sizes)), dtype=np.int64)
        full[:, list(self.latent_columns)] = arr
        if self.nuisance_columns:
            full[:, list(self.nuisance_columns)] = self._check_nuisance(nuisance, len(arr))
        return full @ self.strides

    def _check_nuisance(self, nuisance: Any, n: int) -> np.ndarray:
        cols = self.nuisance_columns
        if nuisance is None:
            return np.zeros((n, len(cols)), dtype=np.int64)
        arr = np.asarray(nuisance)
        if arr.shape != (n, len(cols)) or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"nuisance must be an integer array of shape ({n}, {len(cols)}), "
                             f"got {arr.dtype} {arr.shape}")
        sizes = np.asarray(self.grid_sizes, dtype=np.int64)[list(cols)]
        if arr.size and ((arr < 0) | (arr >= sizes)).any():
            raise ValueError(f"nuisance classes must lie in 0..size-1 of {sizes.tolist()}")
        return arr.astype(np.int64)

    def factors_of(self, indices: Any) -> np.ndarray:
        """int64 (n, K) factor classes of the given flat indices (inverse of index_of)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must be in 0..{len(self) - 1}")
        full = np.stack(np.unravel_index(idx, self.grid_sizes), axis=1).astype(np.int64)
        return full[:, list(self.latent_columns)]

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

    #: ``render(grid factors) -> uint8 images``, a staticmethod on twins that render on
    #: demand (then drawn straight from the factors, without the flat-index round trip)
    render_factors: Any = None

    def sample_observations_from_factors(self, factors: Any,
                                         random_state: Any = None) -> np.ndarray:
        """uint8 (n, C, H, W) images of the given factor classes.

        On a plain grid the images are a deterministic function of the factors, so nothing
        is drawn from ``random_state``; it is still checked (an int, ``RandomState`` or
        ``Generator``) so that a caller's mistake fails here as it would on a stochastic
        dataset. A dataset with nuisance factors or a stochastic observation model needs it:
        first the nuisance columns are drawn (:meth:`complete_factors`), then
        :meth:`observe` draws its noise.
        """
        f = self.check_factors(factors)
        rng = None
        if self.nuisance_columns or self.stochastic:
            if random_state is None:
                raise ValueError(f"random_state is required: {self.name} draws "
                                 f"{'its nuisance factors' if self.nuisance_columns else 'noise'}"
                                 f" for every observation")
            rng = check_random_state(random_state, "random_state")
        elif random_state is not None:
            check_random_state(random_state, "random_state")
        full = self.complete_factors(f, rng)
        if self.render_factors is not None and isinstance(self.base, RenderedImages):
            base = self.render_factors(full)
        else:
            base = gather(self.base, full @ self.strides)
        return self.observe(base, rng)

    def complete_factors(self, factors: np.ndarray, rng: Any = None) -> np.ndarray:
        """Storage-grid factors (n, len(grid_sizes)) for checked factors (n, K): the nuisance
        columns drawn from ``rng``, one ``randint`` per column in column order."""
        if not self.nuisance_columns:
            return factors
        full = np.zeros((len(factors), len(self.grid_sizes)), dtype=np.int64)
        full[:, list(self.latent_columns)] = factors
        for c in self.nuisance_columns:
            full[:, c] = random_integers(rng, self.grid_sizes[c], len(factors))
        return full

    def observe(self, base: np.ndarray, rng: Any = None) -> np.ndarray:
        """The observation model on stored images ``base`` (identity: deterministic data)."""
        del rng
        return base

    def images_at(self, idx: np.ndarray) -> np.ndarray:
        """uint8 (n, C, H, W) images at flat indices, read in sorted order (fast on memmaps)."""
        return gather(self.images, idx)

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
        if isinstance(arr, RenderedImages) or not isinstance(arr, np.ndarray) or \
                not arr.flags.c_contiguous or arr.nbytes > (1 << 30):
            # In chunks straight into the tensor on ``device``: never a second full copy in
            # host memory (the shapes3d twin is 5.9 GB, a memory-mapped MPI3D 12.7 GB).
            out = torch.empty(arr.shape, dtype=torch.uint8, device=device)
            step = 16384
            for s in range(0, len(arr), step):
                out[s:s + step] = torch.from_numpy(np.ascontiguousarray(arr[s:s + step])).to(
                    device)
            return out
        return torch.from_numpy(np.array(arr, dtype=np.uint8)).to(device)  # memmaps are read-only

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, source={self.source!r}, "
                f"split={self.split!r}, n={len(self)}, "
                f"factors={dict(zip(self.factor_names, self.factor_sizes, strict=True))})")


def gather(images: Any, idx: Any) -> np.ndarray:
    """uint8 rows ``images[idx]`` (n, C, H, W), read in sorted order (fast on memmaps)."""
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(images, RenderedImages) or not hasattr(images, "flags"):
        return np.asarray(images[idx])
    order = np.argsort(idx, kind="stable")
    out = np.empty((len(idx), *images.shape[1:]), dtype=np.uint8)
    out[order] = images[idx[order]]
    return out


def cached_layout(path: Path, source: str, shape: tuple[int, ...],
                  fix: str = "converting it again") -> np.ndarray | None:
    """The converted random-access images at ``path`` (memory-mapped) if they were made
    from ``source`` and pass the digest check of :mod:`disbench.datasets.cache` (a damaged
    file is deleted with a warning naming it and ``fix``, and None returned so the caller
    rebuilds it)."""
    return open_array(path, source, shape, what="image cache", fix=fix)


def grid_factors(sizes: Sequence[int]) -> np.ndarray:
    """int64 (prod(sizes), K): the row-major grid of factor classes, last fastest."""
    grids = np.indices(tuple(sizes), dtype=np.int64)
    return grids.reshape(len(sizes), -1).T.copy()
