"""InfoMEC: reference numbers, hand-computed discrete cases, the NaN case, bad input."""
import numpy as np
import pytest
from disbench.metrics.infomec import infomec
from sklearn.metrics import mutual_info_score


def data():
    """The input the pinned reference numbers were computed on (seed 0)."""
    rng = np.random.RandomState(0)
    f = np.stack([rng.randint(0, s, 500) for s in (2, 3, 4)], axis=1)
    z = np.c_[f[:, 0] + 0.3 * rng.normal(size=500), f[:, 1] + 0.5 * f[:, 2] + 0.3 * rng.normal(size=500),
              f[:, 2] + 0.2 * rng.normal(size=500), 0.01 * rng.normal(size=500), rng.normal(size=500)]
    return z, f


# Obtained by running kylehkhsu/latent_quantization at commit 9a420a33 (2024-01-17),
# disentangle/metrics/infomec.py `compute_infomec(f, z, discrete)` unmodified, on scikit-learn 1.3.2
# and numpy 1.26.4 (where it still runs), with np.random.seed(0), 1 and 2 (same numbers: the
# mutual_info_classif noise only breaks ties); discrete: latents np.round(z).
REFERENCE = {
    False: (0.8689859836603362, 0.9162731588956189, 0.8962729180857406,
            [[0.8801583230153617, 0.013242663943321586, 0.0, 0.0, 0.0062572282986009505],
             [0.013922788320816858, 0.4704165726234482, 0.0, 0.008979630671217787, 0.0],
             [0.0, 0.22245835230352623, 0.9933921369639296, 0.0, 0.0]]),
    True: (0.6945008090609376, 0.8347235193529841, 0.904613929634221,
           [[0.7824357212011149, 0.006982826625236198, 0.002466113612956393, 0.0, 0.007419893296871373],
            [0.004783252236430408, 0.3797871221868957, 0.004150240308187873, 0.0, 0.012554403794470217],
            [0.0018437763725039798, 0.1385250953708594, 0.9746698462051179, 0.0, 0.018252479396576305]]),
}


@pytest.mark.parametrize("discrete", [False, True])
def test_matches_reference_numbers(discrete):
    z, f = data()
    out = infomec(np.round(z) if discrete else z, f, discrete_latents=discrete)
    infom, infoe, infoc, nmi = REFERENCE[discrete]
    np.testing.assert_allclose(out["nmi"], nmi, atol=1e-12)
    assert out["infom"] == pytest.approx(infom, abs=1e-12)
    assert out["infoc"] == pytest.approx(infoc, abs=1e-12)
    # InfoE: scikit-learn 1.9's lbfgs stops elsewhere than 1.3.2's on the (nearly separable)
    # unpenalised fit of factor 2 (training log-loss 1.8e-4 vs 3e-7): measured differences
    # 4.3e-5 (continuous) and 7.9e-5 (discrete).
    assert out["infoe"] == pytest.approx(infoe, abs=2e-4)
    assert out["active_latents"].tolist() == [True, True, True, False, True]


def grid(sizes, repeat=1):
    g = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    return np.tile(g, (repeat, 1))


def test_discrete_perfect_and_duplicated_latents_by_hand():
    f = grid([3, 4], repeat=3)
    perfect = infomec(f, f, discrete_latents=True)
    np.testing.assert_allclose(perfect["nmi"], np.eye(2), atol=1e-12)
    assert perfect["infom"] == pytest.approx(1.0, abs=1e-12)
    assert perfect["infoc"] == pytest.approx(1.0, abs=1e-12)
    assert perfect["infoe"] > 0.99  # one-hot latents separate every class
    # Duplicated latent [f0, f0, f1]: every latent has one factor (InfoM 1); factor 0 spreads over
    # two latents: rows max / sum = (1/2, 1), mean 3/4, normalised (3/4 - 1/3) / (1 - 1/3) = 5/8.
    dup = infomec(f[:, [0, 0, 1]], f, discrete_latents=True)
    assert dup["infom"] == pytest.approx(1.0, abs=1e-12)
    assert dup["infoc"] == pytest.approx(5 / 8, abs=1e-12)
    # Permuting latents changes nothing but the NMI columns.
    perm = infomec(f[:, [1, 0]], f, discrete_latents=True)
    assert perm["infom"] == perfect["infom"] and perm["infoc"] == perfect["infoc"]
    np.testing.assert_allclose(perm["nmi"], np.eye(2)[:, [1, 0]], atol=1e-12)


def test_discrete_nmi_matches_mutual_info_score_loop():
    rng = np.random.default_rng(2)
    f = rng.integers(0, [3, 5], size=(200, 2))
    z = np.c_[f[:, 0] + rng.integers(0, 2, 200), rng.integers(0, 4, 200), f[:, 1]]
    out = infomec(z, f, discrete_latents=True)
    for i in range(2):
        h = mutual_info_score(f[:, i], f[:, i])
        for j in range(3):
            assert out["nmi"][i, j] == pytest.approx(mutual_info_score(f[:, i], z[:, j]) / h, abs=1e-12)


def test_infom_is_nan_when_an_active_latent_has_no_information():
    # Latent 2 is a grid dimension independent of both factors: its MI is exactly 0, so its
    # max / sum is 0 / 0 and InfoM is NaN (the reference's behaviour, returned as is).
    g = grid([3, 4, 2], repeat=2)
    out = infomec(g, g[:, :2], discrete_latents=True)
    assert out["active_latents"].all() and np.all(out["nmi"][:, 2] == 0.0)
    assert np.isnan(out["infom"])
    assert not np.isnan(out["infoc"]) and not np.isnan(out["infoe"])


def test_continuous_noise_scores_low_and_seed_is_explicit():
    rng = np.random.default_rng(0)
    f = grid([3, 4], repeat=40)
    noise = rng.normal(size=(len(f), 3))
    a = infomec(noise, f, random_state=1)
    assert a["infoe"] < 0.1
    assert infomec(noise, f, random_state=1)["infom"] == a["infom"]
    with pytest.raises(ValueError, match="random_state"):
        infomec(noise, f, random_state=None)


def test_bad_input():
    z, f = data()
    with pytest.raises(ValueError, match="factors: InfoM needs at least 2 factors"):
        infomec(z, f[:, :1])
    with pytest.raises(ValueError, match="factors: has 499 samples but codes has 500"):
        infomec(z, f[:499])
    with pytest.raises(ValueError, match="codes: contains NaN"):
        infomec(np.full_like(z, np.nan), f)
    with pytest.raises(ValueError, match="factors: column 0 has a single value"):
        infomec(z, np.c_[np.zeros(500, int), f[:, 1]])
    with pytest.raises(ValueError, match="codes: 5 samples; InfoMEC"):
        infomec(z[:5], f[:5])
