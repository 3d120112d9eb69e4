"""Input checks shared by the array-layer metrics.

Every check raises :class:`ValueError` whose message starts with the argument's name and says
what was wrong and how to fix it (e.g. ``"factors_train: column 2 has a single value"``).
Inputs may be numpy arrays, torch tensors or nested sequences; they come back as numpy arrays.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or sequence to a numpy array (no copy if possible)."""
    if x is None:
        raise ValueError(f"{name}: got None, expected an array")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists etc.
        raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    if arr.dtype == object:
        raise ValueError(f"{name}: cannot be converted to a numeric array (object dtype)")
    return arr


def _two_d(x: Any, name: str, kind: str, column: str) -> np.ndarray:
    """``x`` as a non-empty 2-D array (samples x ``column``s) of ``kind`` (codes, factors)."""
    arr = to_numpy(x, name)
    columns = f"{column}s"
    if arr.ndim == 1:
        raise ValueError(
            f"{name}: got a 1-D array of shape {arr.shape}; {kind} must be 2-D (samples x "
            f"{columns}); use {kind}.reshape(-1, 1) for a single {column}"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (samples x {columns}), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}")
    return arr


def check_codes(x: Any, name: str = "codes", *, min_samples: int = 1) -> np.ndarray:
    """Codes: a finite 2-D float array (N samples x D dimensions).

    Float inputs keep their dtype (float32 stays float32, so that histogram edges are computed
    exactly as ``np.histogram`` computes them on the same array); other numeric inputs become
    float64.
    """
    arr = _two_d(x, name, "codes", "dimension")
    if arr.dtype.kind == "b" or arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind == "f":
        if arr.dtype.itemsize < 4:  # float16: promote, numpy reductions are poor in half
            arr = arr.astype(np.float32)
    else:
        raise ValueError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name}: contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "remove or impute those samples"
        )
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name}: {arr.shape[0]} samples is fewer than the {min_samples} needed "
            "(at least one sample per histogram bin); pass more samples or fewer bins"
        )
    return arr


def check_factors(
    y: Any,
    name: str = "factors",
    *,
    require_variation: bool = True,
    allow_continuous: bool = False,
) -> np.ndarray:
    """Factors: a 2-D array of integer labels (N samples x K factors).

    Float arrays whose values are all whole numbers are accepted and converted to int64.
    ``require_variation`` rejects a column with a single value (its entropy is 0, so MIG and
    the classifiers are undefined). ``allow_continuous`` accepts real-valued factors (returned
    as float64; used by SAP with ``continuous_factors=True``).
    """
    arr = _two_d(y, name, "factors", "factor")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(
                f"{name}: contains NaN or inf (first at row {bad[0]}, column {bad[1]})"
            )
        if allow_continuous:
            arr = arr.astype(np.float64)
        else:
            whole = arr == np.round(arr)
            if not np.all(whole):
                bad = np.argwhere(~whole)[0]
                raise ValueError(
                    f"{name}: factors must be integer labels, but row {bad[0]}, column {bad[1]} "
                    f"is {arr[bad[0], bad[1]]}; pass the factor indices (not their values)"
                )
            arr = arr.astype(np.int64)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    else:
        raise ValueError(f"{name}: expected integer factor labels, got dtype {arr.dtype}")
    if require_variation:
        first = arr[:1]
        constant = np.all(arr == first, axis=0)
        if np.any(constant):
            col = int(np.flatnonzero(constant)[0])
            raise ValueError(
                f"{name}: column {col} has a single value ({arr[0, col]}); a factor must vary "
                "over the samples (drop constant factors or draw more samples)"
            )
    return arr


def check_same_n(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    """Codes and factors must have the same number of rows."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{b_name}: has {b.shape[0]} samples but {a_name} has {a.shape[0]}; rows are samples "
            "and must correspond one to one"
        )


def check_same_width(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    """Train and test arrays must have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{b_name}: has {b.shape[1]} columns but {a_name} has {a.shape[1]}; "
            "train and test must have the same dimensions"
        )


def check_num_bins(num_bins: Any) -> int:
    """A positive integer bin count."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins: must be a positive integer, got {num_bins!r}")
    return int(num_bins)


def check_train_test(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    min_train: int = 1,
    allow_continuous: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate the four arrays of a train/test metric and return them as numpy arrays."""
    ctr = check_codes(codes_train, "codes_train", min_samples=min_train)
    ftr = check_factors(factors_train, "factors_train", allow_continuous=allow_continuous)
    check_same_n(ctr, "codes_train", ftr, "factors_train")
    cte = check_codes(codes_test, "codes_test")
    # A small test set may legitimately miss values; only training factors must vary.
    fte = check_factors(
        factors_test, "factors_test", require_variation=False, allow_continuous=allow_continuous
    )
    check_same_n(cte, "codes_test", fte, "factors_test")
    check_same_width(ctr, "codes_train", cte, "codes_test")
    check_same_width(ftr, "factors_train", fte, "factors_test")
    return ctr, ftr, cte, fte
