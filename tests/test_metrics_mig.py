"""MIG, histogram discretisation, discrete MI and input validation."""
import itertools

import numpy as np
import pytest
import torch
from disbench.metrics import mig
from disbench.metrics.discrete import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    mutual_info,
)
from sklearn.metrics import mutual_info_score


def grid(sizes):
    """Every combination of the factor values once: factors are exactly independent."""
    return np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)


def rotation(d, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def sklearn_mig(codes, factors, num_bins=20):
    """Independent reference: the straightforward double loop over sklearn's MI."""
    disc = np.stack(
        [np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T], axis=1
    )
    m = np.array(
        [[mutual_info_score(f, d) for f in factors.T] for d in disc.T]
    )
    h = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(m, axis=0)[::-1]
    return np.mean((top[0] - top[1]) / h)


def test_hand_computed_mi():
    # Joint table (x, y): (0,0)=1, (0,1)=2, (1,1)=1 -> I = 1/2 log(32/27).
    x = np.array([0, 0, 0, 1])
    y = np.array([0, 1, 1, 1])
    assert mutual_info(x, y) == pytest.approx(0.5 * np.log(32 / 27), abs=1e-15)
    assert mutual_info([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(np.log(2), abs=1e-15)
    assert mutual_info([0, 1, 0, 1], [0, 0, 1, 1]) == 0.0
    assert discrete_entropy(np.array([[0], [0], [1], [2]]))[0] == pytest.approx(
        -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    )


def test_discrete_mi_matches_sklearn():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 7, size=(300, 3))
    b = (a[:, :1] + rng.integers(0, 3, size=(300, 2))) * 10
    m = discrete_mutual_info(a, b)
    for i, j in itertools.product(range(3), range(2)):
        assert m[i, j] == pytest.approx(mutual_info_score(b[:, j], a[:, i]), abs=1e-12)


def test_histogram_bins_follow_numpy_histogram():
    x = np.arange(40, dtype=np.float64)[:, None]
    labels = histogram_discretize(x, 20)[:, 0]
    # Edges are linspace(0, 39, 21); the maximum lands in the last bin (label 20).
    assert np.array_equal(labels, np.arange(40) // 2 + 1)
    assert labels.min() == 1 and labels.max() == 20


def test_identity_codes_give_mig_one():
    f = grid([3, 4, 5, 20])
    assert mig(f.astype(np.float64), f) == pytest.approx(1.0, abs=1e-12)


def test_mixing_scores_lower_and_noise_near_zero():
    f = grid([5, 6, 8, 10])
    codes = f.astype(np.float64)
    mixed = (codes - codes.mean(0)) / codes.std(0) @ rotation(4)
    assert mig(mixed, f) < 0.5
    noise = np.random.default_rng(0).normal(size=(len(f), 6))
    assert mig(noise, f) < 0.03


def test_matches_sklearn_double_loop():
    rng = np.random.default_rng(2)
    f = rng.integers(0, [3, 6, 40, 32, 32], size=(3000, 5))
    codes = f @ rng.normal(size=(5, 8)) + rng.normal(size=(3000, 8))
    assert mig(codes, f) == pytest.approx(sklearn_mig(codes, f), abs=1e-12)
    c32 = codes.astype(np.float32)  # binned in float32, as np.histogram would
    assert mig(c32, f) == pytest.approx(sklearn_mig(c32, f), abs=1e-12)


def test_invariances_and_torch_input():
    rng = np.random.default_rng(3)
    f = rng.integers(0, [4, 10, 12], size=(2000, 3))
    codes = f @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(2000, 5))
    base = mig(codes, f)
    perm = rng.permutation(5)
    assert mig(codes[:, perm], f) == pytest.approx(base, abs=1e-12)
    rescaled = codes.copy()
    rescaled[:, 0] = 3.0 * rescaled[:, 0] + 7.0
    rescaled[:, 1] = -0.5 * rescaled[:, 1] - 2.0
    assert mig(rescaled, f) == pytest.approx(base, abs=1e-12)
    assert mig(torch.from_numpy(codes), torch.from_numpy(f)) == base
    assert mig(codes, f) == base  # deterministic


@pytest.mark.parametrize(
    "codes, factors, message",
    [
        (np.zeros((30, 2)), np.arange(29)[:, None], "factors: has 29 samples"),
        (np.full((30, 2), np.nan), np.arange(30)[:, None], "codes: contains NaN"),
        (np.ones((30, 2)) * np.inf, np.arange(30)[:, None], "codes: contains NaN or inf"),
        (np.zeros((30, 2)), np.full((30, 1), 0.5), "factors: factors must be integer"),
        (np.zeros((30, 2)), np.c_[np.arange(30), np.ones(30, int)], "factors: column 1 has a single value"),
        (np.zeros((10, 2)), np.arange(10)[:, None], "codes: 10 samples is fewer"),
        (np.zeros(30), np.arange(30)[:, None], "codes: got a 1-D array"),
        (np.zeros((30, 2)), np.arange(30), "factors: got a 1-D array"),
    ],
)
def test_bad_input(codes, factors, message):
    with pytest.raises(ValueError, match=message):
        mig(codes, factors)


def test_bad_num_bins():
    with pytest.raises(ValueError, match="num_bins"):
        mig(np.zeros((30, 2)), np.arange(30)[:, None], num_bins=0)
