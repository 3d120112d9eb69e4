"""IRS: reference numbers, closed-form cases, an independent loop, bad input."""
import math

import numpy as np
import pytest
from disbench.metrics.irs import irs


def data():
    """The input the pinned reference numbers were computed on (seed 0)."""
    rng = np.random.RandomState(0)
    f = np.stack([rng.randint(0, s, 400) for s in (3, 4, 25)], axis=1)
    w = np.array([[1.0, 0.2, 0.0, 0.0], [0.0, 1.0, 0.3, 0.0], [0.0, 0.0, 0.1, 1.0]])
    c = f / np.array([2.0, 3.0, 24.0]) @ w + 0.05 * rng.normal(size=(400, 4))
    return c, f


def test_matches_reference_numbers():
    # Obtained by running google-research/disentanglement_lib at commit 86a644d4 (2020-08-26),
    # evaluation/metrics/irs.py unmodified (gin stubbed out), on numpy 1.26.4: raw path
    # scalable_disentanglement_score(f, c, q); histogram path utils._histogram_discretize(f.T, 20),
    # irs._drop_constant_dims, then scalable_disentanglement_score, with a constant 5th code.
    c, f = data()
    out = irs(c, f)
    assert out["avg_score"] == pytest.approx(0.7544702687306942, abs=1e-13)
    np.testing.assert_allclose(
        out["disentanglement_scores"],
        [0.8180500672393938, 0.7322059179428106, 0.49929099172647207, 0.8340178469925853],
        atol=1e-13)
    assert out["parents"].tolist() == [0, 1, 1, 2]
    np.testing.assert_allclose(out["IRS_matrix"][0], [0.8180500672393938, 0.04701377785644778,
                                                      0.017642117085792774], atol=1e-13)
    assert out["max_deviations"].shape == (4,)
    assert irs(c, f, diff_quantile=1.0)["avg_score"] == pytest.approx(0.7252837346915465, abs=1e-13)
    hist = irs(np.c_[c, np.full(400, 0.5)], f, factor_discretizer="histogram")
    assert hist["avg_score"] == pytest.approx(0.7526436675496913, abs=1e-13)
    assert hist["num_active_dims"] == 4  # the reference reports 707.99..., the sum of the codes
    np.testing.assert_allclose(hist["IRS_matrix"][3], [0.05704242703306839, 0.061515366787834536,
                                                       0.8270236275220626], atol=1e-13)


def _quantile(values, q):
    """Linear-interpolation quantile (numpy's default method), written out."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def test_matches_direct_loop_of_the_paper_definition():
    rng = np.random.default_rng(3)
    f = rng.integers(0, [3, 5], size=(120, 2))
    c = np.c_[f[:, 0] + 0.3 * rng.normal(size=120), f[:, 1] * 0.5 + f[:, 0] * 0.2,
              rng.normal(size=120)]
    n, d = c.shape
    mean = [sum(c[i, j] for i in range(n)) / n for j in range(d)]
    max_dev = [max(abs(c[i, j] - mean[j]) for i in range(n)) for j in range(d)]
    matrix = np.zeros((d, 2))
    for k in range(2):
        values = sorted(set(f[:, k].tolist()))
        for j in range(d):
            total = 0.0
            for v in values:
                rows = [i for i in range(n) if f[i, k] == v]
                m = sum(c[i, j] for i in rows) / len(rows)
                total += _quantile([abs(c[i, j] - m) for i in rows], 0.99)
            matrix[j, k] = 1.0 - (total / len(values)) / max_dev[j]
    scores = matrix.max(axis=1)
    expected = sum(s * w for s, w in zip(scores, max_dev, strict=True)) / sum(max_dev)
    out = irs(c, f)
    np.testing.assert_allclose(out["IRS_matrix"], matrix, atol=1e-12)
    assert out["avg_score"] == pytest.approx(expected, abs=1e-12)


def grid(sizes, repeat=1):
    g = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    return np.tile(g, (repeat, 1))


def test_perfect_permuted_and_duplicated_codes_score_one():
    f = grid([3, 4, 5], repeat=2)
    c = f.astype(float)
    out = irs(c, f)
    assert out["avg_score"] == pytest.approx(1.0, abs=1e-12)
    assert out["parents"].tolist() == [0, 1, 2]
    perm = irs(c[:, [2, 0, 1]], f)
    assert perm["avg_score"] == pytest.approx(1.0, abs=1e-12)
    assert perm["parents"].tolist() == [2, 0, 1]
    # disentanglement_lib's duplicated-latent case: IRS does not penalise a copied code.
    dup = irs(np.c_[c, c[:, :1]], f)
    assert dup["avg_score"] == pytest.approx(1.0, abs=1e-12)
    assert dup["parents"].tolist() == [0, 1, 2, 0]


def test_noise_codes_score_low_and_mixed_codes_lower_than_perfect():
    f = grid([3, 4, 5], repeat=20)
    rng = np.random.default_rng(0)
    noise = irs(rng.normal(size=(len(f), 3)), f)["avg_score"]
    # Not near 0: a code's 99% within-group deviation of N(0, 1) noise (about 2.6) is compared
    # with its overall maximum deviation (about 3.5 here), so noise scores about 0.3.
    assert 0.2 < noise < 0.4
    mixed = f.astype(float) @ np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1.0]])
    # By hand: z1 = f0 + f1 (max deviation 2.5) is best explained by f1: its 99% deviation with f1
    # fixed is |f0 - 1| <= 1, score 1 - 1 / 2.5 = 0.6; z2 = f1 + f2 (3.5): 1 - 1.5 / 3.5 = 4/7;
    # z3 = f0 + f2 (3): 1 - 1 / 3 = 2/3; weighted by the max deviations: 5.5 / 9 = 11/18.
    assert irs(mixed, f)["avg_score"] == pytest.approx(11 / 18, abs=1e-12)


def test_constant_codes_nan_on_raw_path_dropped_on_histogram_path():
    f = grid([3, 4])
    c = np.c_[f.astype(float), np.zeros(len(f))]
    raw = irs(c, f)
    assert np.isnan(raw["avg_score"]) and np.isnan(raw["disentanglement_scores"][2])
    assert raw["num_active_dims"] == 2
    hist = irs(c, f, factor_discretizer="histogram")
    assert hist["avg_score"] == pytest.approx(1.0, abs=1e-12)
    assert hist["num_active_dims"] == 2 and hist["IRS_matrix"].shape == (2, 2)
    # The reference's test_bad_metric: all codes constant -> 0.
    bad = irs(np.zeros((12, 3)), f, factor_discretizer="histogram")
    assert bad["avg_score"] == 0.0 and bad["num_active_dims"] == 0


def test_histogram_path_merges_values_of_factors_with_more_than_20_values():
    f = np.c_[np.arange(40) % 2, np.arange(40)]
    c = f.astype(float)
    # 40 positions in 20 bins: each bin holds 2 positions, so code 1 varies within its groups.
    assert irs(c, f)["avg_score"] == pytest.approx(1.0, abs=1e-12)
    assert irs(c, f, factor_discretizer="histogram")["IRS_matrix"][1, 1] < 1.0


def test_bad_input():
    f = grid([3, 4])
    c = f.astype(float)
    with pytest.raises(ValueError, match="factors: has 11 samples but codes has 12"):
        irs(c, f[:11])
    with pytest.raises(ValueError, match="codes: contains NaN"):
        irs(np.full((12, 2), np.nan), f)
    with pytest.raises(ValueError, match="factors: column 1 has a single value"):
        irs(c, np.c_[f[:, 0], np.zeros(12, int)])
    with pytest.raises(ValueError, match="diff_quantile"):
        irs(c, f, diff_quantile=99)
    with pytest.raises(ValueError, match="factor_discretizer"):
        irs(c, f, factor_discretizer="quantile")
    with pytest.raises(ValueError, match="codes: got a 1-D array"):
        irs(c[:, 0], f)
