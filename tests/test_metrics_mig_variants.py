"""MIG-sup, DCIMIG, JEMMIG: reference numbers, hand-computed cases, a direct loop, bad input."""
import math
from collections import Counter

import numpy as np
import pytest
from disbench.metrics.mig_variants import dcimig, jemmig, mig_sup, minmax_bin


def data():
    """The input the pinned reference numbers were computed on (seed 0)."""
    rng = np.random.RandomState(0)
    f = np.stack([rng.randint(0, s, 600) for s in (3, 6, 15)], axis=1)
    c = np.c_[f[:, 0] + 0.2 * rng.normal(size=600), f[:, 1] * 0.5 + f[:, 2] * 0.1 + 0.3 * rng.normal(size=600),
              f[:, 2] + 0.5 * rng.normal(size=600), rng.normal(size=600)]
    return c, f


# Obtained by running ubisoft/ubisoft-laforge-disentanglement-metrics at commit 05d5667c
# (2020-12-18), src/metrics/{mig_sup,dcimig,jemmig}.py unmodified, with pyitlib 0.2.2 (its
# requirements.txt version), scikit-learn 1.3.2 and numpy 1.26.4, as fn(factors, codes, ...):
# [defaults, continuous_factors=False, nb_bins=5, codes as float32].
REFERENCE = {
    mig_sup: [0.33094502112377305, 0.3462067467920702, 0.4074854022064301, 0.33094502112377305],
    dcimig: [0.5711233996782564, 0.5385835859525984, 0.6015052698270169, 0.5711233996782564],
    jemmig: [0.556511297396548, 0.556118081746559, 0.6136056595840921, 0.556511297396548],
}


@pytest.mark.parametrize("fn", [mig_sup, dcimig, jemmig], ids=lambda f: f.__name__)
def test_matches_reference_numbers(fn):
    c, f = data()
    got = [fn(c, f), fn(c, f, continuous_factors=False), fn(c, f, num_bins=5),
           fn(c.astype(np.float32), f)]
    np.testing.assert_allclose(got, REFERENCE[fn], atol=1e-12)
    assert fn.higher_is_better is True


def test_minmax_binning_puts_levels_on_edges_into_the_next_bin():
    assert minmax_bin(np.arange(3.0)[:, None], 10).ravel().tolist() == [1, 6, 10]
    assert minmax_bin(np.arange(6.0)[:, None], 10).ravel().tolist() == [1, 3, 5, 7, 9, 10]
    assert minmax_bin(np.arange(15.0)[:, None], 10).ravel().tolist() == \
        [1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 8, 9, 10, 10]
    assert minmax_bin(np.full((4, 1), 7.0), 10).ravel().tolist() == [1, 1, 1, 1]


def _h(*cols):
    """Plug-in (joint) entropy in bits, counted by hand."""
    counts = Counter(zip(*cols, strict=True))
    n = sum(counts.values())
    return -sum(v / n * math.log2(v / n) for v in counts.values())


def test_matches_direct_loop_in_bits():
    c, f = data()
    cb, fb = minmax_bin(c, 10), minmax_bin(f, 10)
    k, d = fb.shape[1], cb.shape[1]
    mi = [[_h(fb[:, i]) + _h(cb[:, j]) - _h(fb[:, i], cb[:, j]) for j in range(d)] for i in range(k)]
    gaps = []
    for j in range(d):
        col = sorted(mi[i][j] / _h(cb[:, j]) for i in range(k))
        gaps.append(col[-1] - col[-2])
    assert mig_sup(c, f) == pytest.approx(sum(gaps) / d, abs=1e-12)
    jem = []
    for i in range(k):
        best = max(range(d), key=lambda j: mi[i][j])
        second = sorted(mi[i])[-2]
        jem.append(1 - (_h(fb[:, i], cb[:, best]) - mi[i][best] + second) / (_h(fb[:, i]) + math.log2(10)))
    assert jemmig(c, f) == pytest.approx(sum(jem) / k, abs=1e-12)


def grid(sizes, repeat=1):
    g = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    return np.tile(g, (repeat, 1))


def test_perfect_permuted_duplicated_and_noise_codes():
    f = grid([3, 4], repeat=5)
    c = f.astype(float)
    for fn in (mig_sup, dcimig, jemmig):
        assert fn(c, f) == pytest.approx(1.0, abs=1e-12)
        assert fn(c[:, ::-1], f) == pytest.approx(1.0, abs=1e-12)
    dup = np.c_[c[:, :1], c]
    assert mig_sup(dup, f) == pytest.approx(1.0, abs=1e-12)  # per code: no penalty
    assert dcimig(dup, f) == pytest.approx(1.0, abs=1e-12)  # best credited gap per factor
    # JEMMIG: factor 0's second-best code carries all H(f0) = log2 3 bits:
    # 1 - (H - H + H) / (H + log2 10) for factor 0, 1 for factor 1.
    h = math.log2(3)
    assert jemmig(dup, f) == pytest.approx((1 - h / (h + math.log2(10)) + 1) / 2, abs=1e-12)
    noise = np.random.default_rng(0).normal(size=(len(f) * 20, 3))
    fn_ = np.tile(f, (20, 1))
    assert mig_sup(noise, fn_) < 0.05 and dcimig(noise, fn_) < 0.05
    assert jemmig(noise, fn_) < 0.35


def test_mig_sup_normalises_by_the_code_entropy():
    # Code 0 is factor 0 merged into 2 values: I = H(code) = 1 bit, so its normalised MI is 1
    # (by the factor's entropy log2 4 it would be 0.5); code 1 is factor 1.
    f = grid([4, 3], repeat=2)
    c = np.c_[f[:, 0] // 2, f[:, 1]].astype(float)
    assert mig_sup(c, f, continuous_factors=False, num_bins=10) == pytest.approx(1.0, abs=1e-12)
    # A constant code has entropy 0: 0 / 0 is NaN, as pyitlib gives.
    assert np.isnan(mig_sup(np.c_[c, np.zeros(len(c))], f, continuous_factors=False))


def test_bad_input():
    c, f = data()
    with pytest.raises(ValueError, match="factors: has 599 samples but codes has 600"):
        mig_sup(c, f[:599])
    with pytest.raises(ValueError, match="codes: contains NaN"):
        dcimig(np.full_like(c, np.nan), f)
    with pytest.raises(ValueError, match="num_bins"):
        jemmig(c, f, num_bins=0)
    with pytest.raises(ValueError, match="factors: MIG-sup needs at least 2 factors"):
        mig_sup(c, f[:, :1])
    with pytest.raises(ValueError, match="codes: JEMMIG needs at least 2 code dimensions"):
        jemmig(c[:, :1], f)
    with pytest.raises(ValueError, match="factors: factors must be integer labels"):
        dcimig(c, f + 0.5, continuous_factors=False)
    assert np.isfinite(dcimig(c, f + 0.5))  # continuous factors may be real-valued
