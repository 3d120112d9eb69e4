"""Reduced downstream task (sampler layer): reference numbers, closed-form cases, bad input."""
import numpy as np
import pytest
from disbench.metrics.reduced_downstream import reduced_downstream_task


class Data:
    """Factors 3 x 4 x 2; observations are the factors (they use no randomness)."""

    factor_sizes = (3, 4, 2)

    def sample_factors(self, num, rs):
        return rs.randint(0, np.array(self.factor_sizes), size=(num, 3))

    def sample_observations_from_factors(self, f, rs):  # noqa: ARG002 (the dataset protocol)
        return np.asarray(f, dtype=np.uint8).reshape(len(f), 1, 1, 3)


def rep(obs):
    f = obs.reshape(len(obs), -1).astype(np.float64)
    return np.c_[f[:, 0] + 0.5 * f[:, 2], f[:, 1], f[:, 2] + 0.1 * f[:, 1], f[:, 0] * 0.3 + f[:, 1]]


def perfect(obs):
    return obs.reshape(len(obs), -1).astype(np.float64)


# Obtained by running google-research/disentanglement_lib at commit 86a644d4,
# evaluation/metrics/reduced_downstream_task.py `compute_reduced_downstream_task(Data(), rep,
# RandomState(0), None, num_factors_to_remove=2, num_train=[80, 120], num_test=60)` unmodified
# (gin/absl stubbed; correlation_measure=compute_factorwise_dci), on this environment's
# scikit-learn 1.9.1 / numpy 2.4.6, with every GradientBoostingClassifier (importances and
# predictor) seeded with the seed disbench draws after all factors. With 1 code removed the same
# run gives 1.0 everywhere (each factor is still readable from the other codes).
REFERENCE_2 = {
    "80:mean_train_accuracy_reduced_factor": 0.7374999999999999,
    "80:mean_test_accuracy_reduced_factor": 0.5388888888888889,
    "80:mean_test_accuracy_other_factors": 1.0,
    "120:mean_train_accuracy_reduced_factor": 0.6916666666666668,
    "120:mean_test_accuracy_reduced_factor": 0.6444444444444444,
    "80:reduced_factor_0:mean_train_accuracy_reduced_factor": 0.5125,
    "80:reduced_factor_0:mean_test_accuracy_factor_0": 0.2833333333333333,
    "80:reduced_factor_0:mean_test_accuracy_non_reduced_factor": 1.0,
    "120:reduced_factor_2:mean_test_accuracy_reduced_factor": 0.5333333333333333,
}


def test_matches_reference_numbers():
    out = reduced_downstream_task(Data(), rep, 0, num_factors_to_remove=2, train_sizes=(80, 120),
                                  num_test=60)
    for key, value in REFERENCE_2.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key
    per_size = 3 * (2 + 2 * 3 + 2) + 4
    assert len(out) == 2 * per_size
    one = reduced_downstream_task(Data(), rep, 0, train_sizes=(80,), num_test=60)
    assert all(v == 1.0 for v in one.values())


def test_perfect_codes_lose_exactly_the_removed_factor():
    out = reduced_downstream_task(Data(), perfect, np.random.RandomState(3), train_sizes=(150,),
                                  num_test=100)
    # Removing factor f's own code leaves no information on f: chance-level accuracy; the other
    # factors keep their codes and stay exact.
    assert out["150:mean_test_accuracy_other_factors"] == 1.0
    assert out["150:mean_test_accuracy_reduced_factor"] < 0.75
    for f in range(3):
        assert out[f"150:reduced_factor_{f}:mean_test_accuracy_non_reduced_factor"] == 1.0
    # Removing nothing is the plain downstream task.
    none = reduced_downstream_task(Data(), perfect, 3, num_factors_to_remove=0, train_sizes=(150,),
                                   num_test=100)
    assert none["150:mean_test_accuracy_reduced_factor"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="num_factors_to_remove: 3 would remove all 3"):
        reduced_downstream_task(Data(), perfect, 0, num_factors_to_remove=3, train_sizes=(20,), num_test=5)
    with pytest.raises(ValueError, match="num_factors_to_remove: must be an integer"):
        reduced_downstream_task(Data(), perfect, 0, num_factors_to_remove=-1)
    with pytest.raises(ValueError, match="num_test"):
        reduced_downstream_task(Data(), perfect, 0, num_test=0)
    with pytest.raises(ValueError, match="train_sizes"):
        reduced_downstream_task(Data(), perfect, 0, train_sizes=())
    with pytest.raises(ValueError, match="random_state"):
        reduced_downstream_task(Data(), perfect, "seed")
