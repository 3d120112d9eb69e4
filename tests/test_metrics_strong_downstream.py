"""Strong downstream task (sampler layer): the reference's own cases, closed forms, bad input."""
import numpy as np
import pytest
from disbench.metrics.strong_downstream import intervene, strong_downstream_task


class Data:
    factor_sizes = (3, 4, 5)

    def sample_factors(self, num, rs):
        return rs.randint(0, np.array(self.factor_sizes), size=(num, 3))

    def sample_observations_from_factors(self, f, rs):  # noqa: ARG002 (the dataset protocol)
        return np.asarray(f, dtype=np.uint8).reshape(len(f), 1, 1, 3)


def perfect(obs):
    return obs.reshape(len(obs), -1).astype(np.float64)


def entangled(obs):
    f = perfect(obs)
    return np.c_[f[:, 0] * 5 + f[:, 2], f[:, 1] * 5 + f[:, 2]]


SMALL = {"train_sizes": (200,), "num_test": 150, "n_experiment": 2}


def test_intervene_as_the_reference_test():
    # strong_downstream_task_test.py test_intervene: another factor is fixed in train, and the
    # test set never takes that value.
    rs = np.random.RandomState(0)
    ds = Data()
    ftr, fte = ds.sample_factors(1000, rs), ds.sample_factors(1000, rs)
    for i in range(3):
        a, b, factor, value = intervene(ftr, fte, i, ds.factor_sizes, rs)
        assert factor != i
        assert np.all(a[:, factor] == value) and np.all(b[:, factor] != value)
        keep = [j for j in range(3) if j != factor]
        assert np.array_equal(a[:, keep], ftr[:, keep]) and np.array_equal(b[:, keep], fte[:, keep])
        assert set(np.unique(b[:, factor])) == set(range(ds.factor_sizes[factor])) - {value}


def test_perfect_codes_generalise_and_entangled_codes_do_not():
    out = strong_downstream_task(Data(), perfect, 0, **SMALL)
    # A fixed factor is a constant code in training: the trees cannot split on it, so the shift
    # at test time changes nothing.
    assert out["200:mean_test_accuracy"] == 1.0
    assert out["200:mean_strong_test_accuracy"] == 1.0
    assert out["200:strong_generalization_gap"] == 0.0
    bad = strong_downstream_task(Data(), entangled, 0, **SMALL)
    assert bad["200:mean_test_accuracy"] == 1.0  # the codes are an invertible mix
    assert bad["200:mean_strong_test_accuracy"] < 0.9
    assert bad["200:strong_generalization_gap"] == pytest.approx(
        1 - bad["200:mean_strong_test_accuracy"], abs=1e-15)
    assert set(bad) == {f"200:{k}" for k in ("mean_train_accuracy", "mean_test_accuracy",
                                              "mean_strong_train_accuracy",
                                              "mean_strong_test_accuracy", "strong_generalization_gap")}


def test_noise_codes_as_the_reference_task_test_and_determinism():
    # test_task: codes unrelated to the factors -> strong test accuracy in [0, 0.3] for 5 values.
    class Five(Data):
        factor_sizes = (5, 5, 5)

    def noise(obs):
        return np.random.default_rng(len(obs)).normal(size=(len(obs), 3))

    out = strong_downstream_task(Five(), noise, np.random.RandomState(0), **SMALL)
    assert 0.0 <= out["200:mean_strong_test_accuracy"] <= 0.3
    assert strong_downstream_task(Five(), noise, 0, **SMALL) == out


def test_bad_input():
    with pytest.raises(ValueError, match="random_state"):
        strong_downstream_task(Data(), perfect, None)
    with pytest.raises(ValueError, match="n_experiment"):
        strong_downstream_task(Data(), perfect, 0, n_experiment=0)
    with pytest.raises(ValueError, match="num_test"):
        strong_downstream_task(Data(), perfect, 0, num_test=0)
    with pytest.raises(ValueError, match="predictor"):
        strong_downstream_task(Data(), perfect, 0, predictor="knn")

    class One(Data):
        factor_sizes = (3,)

    with pytest.raises(ValueError, match="dataset: the strong downstream task needs at least 2"):
        strong_downstream_task(One(), perfect, 0)
