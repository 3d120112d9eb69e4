"""Fairness (sampler layer): reference numbers, the reference's own unit cases, bad input."""
import numpy as np
import pytest
from disbench.metrics.fairness import compute_scores_dict, fairness, inter_group_fairness


class Data:
    """Factors 3 x 4 x 2; observations are the factors (they use no randomness)."""

    factor_sizes = (3, 4, 2)

    def __init__(self):
        self.rendered = 0

    def sample_factors(self, num, rs):
        return rs.randint(0, np.array(self.factor_sizes), size=(num, 3))

    def sample_observations_from_factors(self, f, rs):  # noqa: ARG002 (the dataset protocol)
        self.rendered += len(f)
        return np.asarray(f, dtype=np.uint8).reshape(len(f), 1, 1, 3)


def lossy(obs):
    """A representation that merges factors 0 and 2, so predictions depend on sensitive factors."""
    f = obs.reshape(len(obs), -1).astype(np.float64)
    return np.c_[f[:, 0] + f[:, 2], (f[:, 1] + f[:, 0]) % 3]


def perfect(obs):
    return obs.reshape(len(obs), -1).astype(np.float64)


# Obtained by running google-research/disentanglement_lib at commit 86a644d4,
# evaluation/metrics/fairness.py `compute_fairness(Data(), lossy, RandomState(0), None, 200, 30)`
# unmodified (gin stubbed out), on this environment's scikit-learn 1.9.1 / numpy 2.4.6, with the
# predictor GradientBoostingClassifier(random_state=s), s the seed disbench draws after all
# factors (the reference's own classifier is unseeded). Observations use no randomness, so both
# draw the same factors.
REFERENCE = {
    "mean_fairness:pred0:sens1": 0.07499999925494194, "mean_fairness:pred0:sens2": 0.18333333730697632,
    "mean_fairness:pred1:sens0": 0.18888888756434122, "mean_fairness:pred1:sens2": 0.18333333730697632,
    "mean_fairness:pred2:sens0": 0.14814814925193787, "mean_fairness:pred2:sens1": 0.10833332687616348,
    "max_fairness:pred0:sens1": 0.15000000596046448, "max_fairness:pred0:sens2": 0.18333333730697632,
    "max_fairness:pred1:sens0": 0.20000000298023224, "max_fairness:pred1:sens2": 0.18333333730697632,
    "max_fairness:pred2:sens0": 0.222222238779068, "max_fairness:pred2:sens1": 0.21666666865348816,
    "mean_fairness:mean_pred:mean_sens": 0.14783950626022285,
    "max_fairness:max_pred:max_sens": 0.222222238779068,
}


def test_matches_reference_numbers_and_renders_in_bulk():
    ds = Data()
    out = fairness(ds, lossy, 0, num_train=200, num_test_points_per_class=30)
    for key, value in REFERENCE.items():
        assert out[key] == pytest.approx(value, abs=1e-15), key
    assert len(out) == 2 * (6 + 4 * 3 + 8)
    # 200 training points, then for each of the 6 (target, sensitive) pairs 30 points per value.
    assert ds.rendered == 200 + 30 * (2 * (3 + 4 + 2))
    assert fairness(Data(), lossy, 0, num_train=200, num_test_points_per_class=30) == out
    assert fairness.higher_is_better is False


def test_perfect_representation_is_fair():
    out = fairness(Data(), perfect, np.random.RandomState(1), num_train=200, num_test_points_per_class=20)
    assert out["mean_fairness:mean_pred:mean_sens"] == 0.0
    assert out["max_fairness:max_pred:max_sens"] == 0.0


def test_inter_group_fairness_reference_case():
    # fairness_test.py: overall 1/3 : 2/3; TV distances 1/3 and 1/6; mean 1/3 * 1/3 + 2/3 * 1/6.
    mean, worst = inter_group_fairness(np.array([[0, 100], [100, 100]]))
    assert mean == pytest.approx(2 / 9, abs=1e-7)  # float32 arithmetic, as the reference
    assert worst == pytest.approx(1 / 3, abs=1e-7)


def test_compute_scores_dict_reference_case():
    scores = np.array([[0.0, 2.0, 4.0], [4.0, 0.0, 8.0], [2.0, 10.0, 0.0]])
    expected = {  # fairness_test.py's test_compute_scores_dict
        "test:pred0:sens1": 2.0, "test:pred0:sens2": 4.0, "test:pred1:sens0": 4.0,
        "test:pred1:sens2": 8.0, "test:pred2:sens0": 2.0, "test:pred2:sens1": 10.0,
        "test:pred0:mean_sens": 3.0, "test:pred0:max_sens": 4.0, "test:pred1:mean_sens": 6.0,
        "test:pred1:max_sens": 8.0, "test:pred2:mean_sens": 6.0, "test:pred2:max_sens": 10.0,
        "test:sens0:mean_pred": 3.0, "test:sens0:max_pred": 4.0, "test:sens1:mean_pred": 6.0,
        "test:sens1:max_pred": 10.0, "test:sens2:mean_pred": 6.0, "test:sens2:max_pred": 8.0,
        "test:mean_sens:mean_pred": 5.0, "test:mean_sens:max_pred": 22.0 / 3.0,
        "test:max_sens:mean_pred": 6.0, "test:max_sens:max_pred": 10.0,
        "test:mean_pred:mean_sens": 5.0, "test:mean_pred:max_sens": 22.0 / 3.0,
        "test:max_pred:mean_sens": 6.0, "test:max_pred:max_sens": 10.0,
    }
    assert compute_scores_dict(scores, "test") == pytest.approx(expected, abs=1e-15)
    assert set(compute_scores_dict(scores, "test")) == set(expected)


def test_bad_input():
    with pytest.raises(ValueError, match="random_state"):
        fairness(Data(), lossy, None)
    with pytest.raises(ValueError, match="num_train: must be an integer >= 2"):
        fairness(Data(), lossy, 0, num_train=1)
    with pytest.raises(ValueError, match="num_test_points_per_class"):
        fairness(Data(), lossy, 0, num_test_points_per_class=0)
    with pytest.raises(ValueError, match="predictor: unknown"):
        fairness(Data(), lossy, 0, predictor="svm")
    with pytest.raises(ValueError, match="representation_fn: returned NaN"):
        fairness(Data(), lambda o: np.full((len(o), 2), np.nan), 0, num_train=20,
                 num_test_points_per_class=5)
