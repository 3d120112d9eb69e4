"""UDR: reference numbers, the reference's own cases, hand-computed pair scores, bad input."""
import numpy as np
import pytest
from disbench.metrics.udr import relative_strength_disentanglement, udr


def data():
    """The input the pinned reference numbers were computed on (seed 0)."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(300, 4))
    a = np.c_[z[:, :3], 0.01 * rng.normal(size=300)]
    b = np.c_[-z[:, 2], z[:, 0] + 0.3 * rng.normal(size=300), z[:, 1] + 0.5 * z[:, 0],
              rng.normal(size=300)]
    c = z @ rng.normal(size=(4, 4)) + 0.1 * rng.normal(size=(300, 4))
    kl = np.array([[1.0, 0.8, 0.5, 0.001], [0.9, 0.7, 0.6, 0.2], [0.5, 0.5, 0.5, 0.05]])
    return [a, b, c], kl


# Obtained by running google-research/disentanglement_lib at commit 86a644d4,
# evaluation/udr/metrics/udr.py `compute_udr_sklearn` unmodified (gin stubbed out; its
# _generate_representation_dataset replaced by one returning data()), scikit-learn 1.3.2,
# numpy 1.26.4, scipy 1.11.4, random_state=np.random.RandomState(0).
REFERENCE = {
    ("lasso", True, 0.01): [0.616743336458859, 0.5364896703605473, 0.37131384529046774],
    ("lasso", False, 0.01): [0.5353383193391459, 0.48866765335033696, 0.3492208205191589],
    ("lasso", True, 0.1): [0.6395016774825648, 0.5479155739125735, 0.34961085339285514],
    ("spearman", True, 0.01): [0.523177610079639, 0.4858818047387594, 0.35330029501780047],
    ("spearman", False, 0.01): [0.19600511001026935, 0.2937927566796552, 0.21821684300753502],
    ("spearman", True, 0.1): [0.5153760452889027, 0.4782477498522243, 0.337864675340529],
}
REFERENCE_LASSO_PAIRS = [[0.0, 0.6702465455639977, 0.41286826952873434],
                         [0.7150289968068004, 0.0, 0.32975942105220113],
                         [0.5184576761109176, 0.40273279515709703, 0.0]]


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_matches_reference_numbers(key):
    correlation, filter_low_kl, threshold = key
    reps, kl = data()
    out = udr(reps, kl, correlation=correlation, filter_low_kl=filter_low_kl,
              kl_filter_threshold=threshold)
    np.testing.assert_allclose(out["model_scores"], REFERENCE[key], atol=1e-12)


def test_lasso_pairs_are_asymmetric_and_scores_are_column_medians():
    reps, kl = data()
    out = udr(reps, kl)
    pair = out["pairwise_disentanglement_scores"]
    np.testing.assert_allclose(pair, REFERENCE_LASSO_PAIRS, atol=1e-12)
    assert abs(pair[0, 1] - pair[1, 0]) > 0.01
    seeded = udr(reps, kl, random_state=np.random.RandomState(5))["model_scores"]
    np.testing.assert_array_equal(seeded, out["model_scores"])  # no effect, as in the reference
    assert out["model_scores"][0] == pytest.approx(np.median([pair[1, 0], pair[2, 0]]), abs=1e-15)
    assert out["raw_correlations"].shape == (3, 3, 4, 4)
    # Model 0's 4th latent (KL 0.001 <= 0.01) is zeroed: its Lasso row is exactly 0.
    assert np.all(out["raw_correlations"][0, 1][3] == 0.0)


def test_relative_strength_hand_values():
    # The reference's test_relative_strength_disentanglement matrices, with exact values.
    assert relative_strength_disentanglement(np.eye(3)) == 1.0
    # Columns and rows: max^2 / sum = 1/2, 1/2, 1 -> mean 2/3.
    two = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert relative_strength_disentanglement(two) == pytest.approx(2 / 3, abs=1e-15)
    assert relative_strength_disentanglement(np.ones((3, 3))) == pytest.approx(1 / 3, abs=1e-15)
    assert relative_strength_disentanglement(np.zeros((3, 3))) == 0.0  # 0 / 0 counts as 0
    # Non-square: rows (0.9^2 / 1.0, 0.5^2 / 0.5) and columns (0.81 / 0.9, 0.01 / 0.1, 0.25 / 0.5).
    m = np.array([[0.9, 0.1, 0.0], [0.0, 0.0, 0.5]])
    expected = ((0.81 / 0.9 + 0.01 / 0.1 + 0.25 / 0.5) / 3 + (0.81 / 1.0 + 0.25 / 0.5) / 2) / 2
    assert relative_strength_disentanglement(m) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_permuted_and_sign_flipped_models_agree(correlation):
    # The reference's test_metric_lasso / test_metric_spearman: a permuted, sign-flipped copy.
    rng = np.random.RandomState(0)
    a = rng.uniform(size=(1000, 5))
    b = a[:, [3, 0, 4, 1, 2]] * np.array([1, -1, 1, -1, 1])
    out = udr([a, b], np.ones((2, 5)), correlation=correlation)
    if correlation == "lasso":
        # Standardised exact copies: Lasso(alpha=0.1) soft-thresholds each matching coefficient
        # to 1 - 0.1 and leaves the rest at 0; max^2 / sum = 0.9 for every row and column.
        np.testing.assert_allclose(out["model_scores"], [0.9, 0.9], atol=1e-9)
    else:
        assert np.all(out["model_scores"] > 0.9)  # off-diagonal |rho| of independent noise ~0.02
    assert out["model_scores"][0] == out["pairwise_disentanglement_scores"][1, 0]


def test_kl_filter_as_in_the_reference_kl_test():
    # test_metric_kl: only the first latent is informative, the others noise with KL 0.
    rng = np.random.RandomState(0)
    x = rng.uniform(size=(1000, 1))
    reps = [np.c_[x, rng.uniform(size=(1000, 4))], np.c_[x, rng.uniform(size=(1000, 4))]]
    kl = np.array([[1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0]])
    assert np.all(udr(reps, kl, filter_low_kl=False)["model_scores"] < 0.2)
    assert np.all(udr(reps, kl, filter_low_kl=True)["model_scores"] > 0.8)
    # The zeroing threshold is fixed at 0.01: a latent of KL 0.005 is zeroed even when the mask
    # threshold (0.001) keeps it, and the zeroed latent then lowers the score.
    kl2 = np.array([[1.0, 0.005, 0, 0, 0], [1.0, 0, 0, 0, 0]])
    low = udr(reps, kl2, kl_filter_threshold=0.001)
    assert np.all(low["raw_correlations"][0, 1][1] == 0.0)
    assert low["model_scores"][1] < udr(reps, kl2)["model_scores"][1]


def test_bad_input():
    reps, kl = data()
    with pytest.raises(ValueError, match="correlation: unknown 'pearson'"):
        udr(reps, kl, correlation="pearson")
    with pytest.raises(ValueError, match="representations: UDR compares models"):
        udr(reps[:1], kl[:1])
    with pytest.raises(ValueError, match=r"representations\[1\]: shape \(299, 4\) differs"):
        udr([reps[0], reps[1][:299]], kl[:2])
    with pytest.raises(ValueError, match="kl_divergences: expected shape"):
        udr(reps, kl[:, :3])
    with pytest.raises(ValueError, match=r"representations\[2\]: contains NaN"):
        udr([reps[0], reps[1], np.full((300, 4), np.nan)], kl)
    with pytest.raises(ValueError, match="kl_divergences: model 1 has no latent"):
        udr(reps, np.r_[kl[:1], np.zeros((1, 4)), kl[2:]])
