"""DCI, SAP, modularity/explicitness: closed-form cases and independent computations."""
import itertools

import numpy as np
import pytest
import scipy.stats
import torch
from disbench.metrics import dci, modularity_explicitness, sap
from disbench.metrics.dci import completeness, disentanglement
from disbench.metrics.modularity import modularity
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer


def grid(sizes, repeat=1):
    g = np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)
    return np.tile(g, (repeat, 1))


def rotation(d, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


# Orthonormal (Helmert) mixing: every code depends on several factors.
HELMERT = np.array(
    [[1 / np.sqrt(3), 1 / np.sqrt(2), 1 / np.sqrt(6)],
     [1 / np.sqrt(3), -1 / np.sqrt(2), 1 / np.sqrt(6)],
     [1 / np.sqrt(3), 0.0, -2 / np.sqrt(6)]]
)


def standardise(x):
    return (x - x.mean(0)) / x.std(0)


# ---------------------------------------------------------------- DCI


def test_dci_scores_of_hand_importance_matrices():
    assert disentanglement(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert completeness(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    assert completeness(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    # Code 0 serves both factors equally, code 1 is unused: D = 0, but each factor has one code.
    r = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert disentanglement(r) == pytest.approx(0.0, abs=1e-8)
    assert completeness(r) == pytest.approx(1.0, abs=1e-8)
    # Two codes for factor 0 with weights (3, 1): base-2 entropy H(3/4, 1/4).
    r = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(3)
    assert completeness(r) == pytest.approx(0.5 * (1 - h) + 0.5 * 1.0, abs=1e-8)
    assert disentanglement(r) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.zeros((2, 2))) == 0.0


def test_dci_identity_codes_are_perfect():
    f = grid([3, 4, 5], repeat=2)
    out = dci(f.astype(float), f, f.astype(float), f)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert out["informativeness_train"] == 1.0
    assert out["informativeness_test"] == 1.0
    seeded = dci(f.astype(float), f, f.astype(float), f, random_state=np.random.RandomState(1))
    assert seeded["disentanglement"] == pytest.approx(1.0, abs=1e-6)


def test_dci_matches_straightforward_gbt_loop_and_is_deterministic():
    rng = np.random.default_rng(0)
    f = rng.integers(0, [2, 3, 4], size=(150, 3))
    ft = rng.integers(0, [2, 3, 4], size=(80, 3))
    w = rng.normal(size=(3, 4))
    c = f @ w + 0.5 * rng.normal(size=(150, 4))
    ct = ft @ w + 0.5 * rng.normal(size=(80, 4))
    # dci fits on the columns in a content-defined order (for exact permutation invariance);
    # hand it columns already in that order so that sklearn sees the same feature order here.
    order = sorted(range(4), key=lambda j: c[:, j].tobytes())
    c, ct = c[:, order], ct[:, order]
    r = np.zeros((4, 3))
    acc_tr, acc_te = [], []
    for k in range(3):
        m = GradientBoostingClassifier(random_state=3).fit(c, f[:, k])
        r[:, k] = np.abs(m.feature_importances_)
        acc_tr.append(np.mean(m.predict(c) == f[:, k]))
        acc_te.append(np.mean(m.predict(ct) == ft[:, k]))
    d_ref = np.sum((1 - scipy.stats.entropy(r.T + 1e-11, base=3)) * r.sum(1) / r.sum())
    c_ref = np.sum((1 - scipy.stats.entropy(r + 1e-11, base=4)) * r.sum(0) / r.sum())
    out = dci(c, f, ct, ft, random_state=3)
    assert out["disentanglement"] == pytest.approx(d_ref, abs=1e-12)
    assert out["completeness"] == pytest.approx(c_ref, abs=1e-12)
    assert out["informativeness_train"] == pytest.approx(np.mean(acc_tr), abs=1e-12)
    assert out["informativeness_test"] == pytest.approx(np.mean(acc_te), abs=1e-12)
    assert dci(c, f, ct, ft, random_state=3, n_jobs=2) == out  # parallel == serial, repeatable
    assert dci(torch.from_numpy(c), torch.from_numpy(f), ct, ft, random_state=3) == out


def test_dci_mixed_and_noise_codes_score_lower():
    f = grid([3, 4, 5], repeat=2)
    mixed = standardise(f.astype(float)) @ HELMERT
    out = dci(mixed, f, mixed, f)
    assert out["disentanglement"] < 0.7
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(f), 3))
    noise_test = rng.normal(size=(len(f), 3))
    out = dci(noise, f, noise_test, f)
    assert out["disentanglement"] < 0.15
    assert out["informativeness_test"] < 0.45  # chance is ~0.27 on average over factors


def test_dci_permuting_codes_changes_nothing():
    rng = np.random.default_rng(2)
    f = grid([3, 4, 5], repeat=2)
    c = standardise(f.astype(float)) @ (np.eye(3) + 0.3 * rotation(3)) + 0.2 * rng.normal(size=(len(f), 3))
    c = np.c_[c, rng.normal(size=(len(f), 1))]
    perm = np.array([3, 0, 2, 1])
    a = dci(c, f, c, f)
    b = dci(c[:, perm], f, c[:, perm], f)
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-12)


@pytest.mark.parametrize("estimator", ["hist_gbt", "random_forest", "lasso"])
def test_dci_other_estimators_rank_identity_above_mixed(estimator):
    f = grid([3, 4, 5], repeat=2)
    c = f.astype(float)
    out = dci(c, f, c, f, estimator=estimator)
    mixed = standardise(c) @ HELMERT
    out_mixed = dci(mixed, f, mixed, f, estimator=estimator)
    assert out["disentanglement"] > out_mixed["disentanglement"] + 0.1
    assert out["completeness"] > out_mixed["completeness"] + 0.1
    if estimator != "lasso":
        assert out["informativeness_test"] == 1.0
    if estimator == "hist_gbt":
        assert out["disentanglement"] > 0.95


def test_dci_bad_input():
    f = grid([3, 4])
    with pytest.raises(ValueError, match="estimator"):
        dci(f.astype(float), f, f.astype(float), f, estimator="xgboost")
    with pytest.raises(ValueError, match="codes_test: has 3 columns but codes_train has 2"):
        dci(f.astype(float), f, np.zeros((12, 3)), f)
    with pytest.raises(ValueError, match="factors_train: column 1 has a single value"):
        dci(f.astype(float), np.c_[f[:, 0], np.zeros(12, int)], f.astype(float), f)
    with pytest.raises(ValueError, match="codes_train: contains NaN"):
        dci(np.full((12, 2), np.nan), f, f.astype(float), f)
    with pytest.raises(ValueError, match="factors_test: has 11 samples"):
        dci(f.astype(float), f, f.astype(float), f[:11])


# ---------------------------------------------------------------- SAP


def test_sap_binary_grid_closed_form_and_permutation():
    # Matching code: accuracy 1; any function of an independent code on a full grid: exactly 1/2.
    f = grid([2, 2, 2], repeat=3)
    c = 2.0 * f - 1.0
    assert sap(c, f, c, f) == pytest.approx(0.5, abs=1e-12)
    perm = [2, 0, 1]
    assert sap(c[:, perm], f, c[:, perm], f) == pytest.approx(0.5, abs=1e-12)


def test_sap_continuous_closed_form():
    f = grid([3, 4, 5])
    c = f.astype(float) * np.array([2.0, -1.0, 0.5]) + 1.0
    # Squared correlation 1 with the matching code, 0 with the others (independent on a grid).
    assert sap(c, f, c, f, continuous_factors=True) == pytest.approx(1.0, abs=1e-12)
    # 45-degree mix of two standardised factors: each code has squared correlation 1/2 with
    # both factors, so the gap, and SAP, is exactly 0.
    z = standardise(grid([4, 6]).astype(float))
    mixed = np.c_[z[:, 0] + z[:, 1], z[:, 0] - z[:, 1]] / np.sqrt(2)
    assert sap(mixed, grid([4, 6]), mixed, grid([4, 6]), continuous_factors=True) == pytest.approx(
        0.0, abs=1e-12
    )
    fc = f + np.random.default_rng(0).uniform(size=f.shape)  # real-valued factors allowed
    assert 0 < sap(c, fc, c, fc, continuous_factors=True) <= 1


def test_sap_noise_near_zero_and_bad_input():
    rng = np.random.default_rng(3)
    f = rng.integers(0, [3, 4], size=(400, 2))
    ft = rng.integers(0, [3, 4], size=(200, 2))
    assert sap(rng.normal(size=(400, 4)), f, rng.normal(size=(200, 4)), ft) < 0.08
    with pytest.raises(ValueError, match="factors_train: factors must be integer"):
        sap(rng.normal(size=(400, 4)), f + 0.5, rng.normal(size=(200, 4)), ft)


# ---------------------------------------------------------------- modularity / explicitness


def test_modularity_closed_form():
    assert modularity(np.array([[1.0, 0.0], [0.0, 2.0]])) == 1.0
    assert modularity(np.array([[1.0, 1.0], [0.0, 0.0]])) == 0.0
    # K = 3, m = (2, 1, 1): 1 - (4 + 1 + 1 - 4) / (4 * 2) = 0.75
    assert modularity(np.array([[2.0, 1.0, 1.0]])) == pytest.approx(0.75)


def test_modularity_explicitness_identity_and_reference():
    f = grid([3, 4, 5], repeat=2)
    out = modularity_explicitness(f.astype(float), f, f.astype(float), f)
    assert out["modularity"] == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(4)
    f = rng.integers(0, [2, 4, 6], size=(500, 3))
    ft = rng.integers(0, [2, 4, 6], size=(250, 3))
    w = rng.normal(size=(3, 4))
    c = f @ w + rng.normal(size=(500, 4))
    ct = ft @ w + rng.normal(size=(250, 4))
    out = modularity_explicitness(c, f, ct, ft)
    # Independent: the reference recipe with sklearn's MultiLabelBinarizer.
    mean, std = c.mean(0), c.std(0)
    tr, te = [], []
    for k in range(3):
        clf = LogisticRegression(max_iter=100).fit((c - mean) / std, f[:, k])
        mlb = MultiLabelBinarizer()
        tr.append(roc_auc_score(mlb.fit_transform(f[:, k : k + 1]), clf.predict_proba((c - mean) / std)))
        te.append(roc_auc_score(mlb.fit_transform(ft[:, k : k + 1]), clf.predict_proba((ct - mean) / std)))
    assert out["explicitness_train"] == pytest.approx(np.mean(tr), abs=1e-12)
    assert out["explicitness_test"] == pytest.approx(np.mean(te), abs=1e-12)
    assert 0 < out["modularity"] < 1


def test_modularity_bad_input():
    f = grid([3, 4])
    with pytest.raises(ValueError, match="codes_train: 12 samples is fewer than the 20"):
        modularity_explicitness(f.astype(float), f, f.astype(float), f)
