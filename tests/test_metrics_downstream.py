"""Downstream task: reference numbers, keys, closed-form cases, an independent loop, bad input."""
import numpy as np
import pytest
from disbench.metrics.downstream import downstream_task
from sklearn.ensemble import GradientBoostingClassifier


def data():
    """The input the pinned reference numbers were computed on (seed 0)."""
    rng = np.random.RandomState(0)
    sizes = (2, 3, 5)
    f = np.stack([rng.randint(0, s, 700) for s in sizes], axis=1)
    w = rng.normal(size=(3, 4))
    c = f @ w + 0.8 * rng.normal(size=(700, 4))
    return c[:400], f[:400], c[400:], f[400:]


# Obtained by running google-research/disentanglement_lib at commit 86a644d4,
# evaluation/metrics/downstream_task.py `_compute_loss` unmodified (gin stubbed out) on
# scikit-learn 1.3.2 / numpy 1.26.4, on data() with the first n training rows, with the predictor
# utils.logistic_regression_cv() = LogisticRegressionCV(Cs=10, cv=KFold(5)) plus multi_class="ovr"
# (scikit-learn's default before 0.22, when the study ran). (train accuracies, test accuracies).
REFERENCE_OVR = {
    10: ([0.8, 0.7, 0.5], [0.5033333333333333, 0.36, 0.36]),
    100: ([0.94, 0.92, 0.47], [0.91, 0.7933333333333333, 0.36666666666666664]),
    400: ([0.9425, 0.7925, 0.4825], [0.92, 0.7766666666666666, 0.4033333333333333]),
}
# The same with utils.logistic_regression_cv() unmodified (scikit-learn >= 0.22: multinomial),
# n = 100. (At n = 10 that reference crashes in scikit-learn 1.3.2: folds miss classes. At n = 400
# scikit-learn 1.9 gives 0.615 / 0.5367 for factor 2 where 1.3.2 gave 0.6125 / 0.5333.)
REFERENCE_MULTINOMIAL_100 = ([0.94, 0.88, 0.7], [0.91, 0.7833333333333333, 0.49666666666666665])


def test_logistic_regression_cv_matches_reference_numbers():
    out = downstream_task(*data(), train_sizes=(10, 100, 400))
    for n, (train, test) in REFERENCE_OVR.items():
        for k in range(3):
            assert out[f"{n}:train_accuracy_factor_{k}"] == pytest.approx(train[k], abs=1e-12)
            assert out[f"{n}:test_accuracy_factor_{k}"] == pytest.approx(test[k], abs=1e-12)
        assert out[f"{n}:mean_test_accuracy"] == pytest.approx(np.mean(test), abs=1e-12)
        assert out[f"{n}:min_train_accuracy"] == pytest.approx(min(train), abs=1e-12)
    multi = downstream_task(*data(), predictor="logistic_regression_cv_multinomial", train_sizes=(100,))
    train, test = REFERENCE_MULTINOMIAL_100
    assert [multi[f"100:train_accuracy_factor_{k}"] for k in range(3)] == pytest.approx(train, abs=1e-12)
    assert [multi[f"100:test_accuracy_factor_{k}"] for k in range(3)] == pytest.approx(test, abs=1e-12)


def test_keys_are_disentanglement_libs():
    out = downstream_task(*data(), predictor="gradient_boosting_classifier", train_sizes=(10, 50))
    expected = set()
    for n in (10, 50):
        expected |= {f"{n}:mean_train_accuracy", f"{n}:mean_test_accuracy",
                     f"{n}:min_train_accuracy", f"{n}:min_test_accuracy"}
        expected |= {f"{n}:{s}_accuracy_factor_{k}" for s in ("train", "test") for k in range(3)}
    assert set(out) == expected
    assert all(isinstance(v, float) for v in out.values())


def test_gradient_boosting_matches_direct_loop_on_first_rows():
    ctr, ftr, cte, fte = data()
    out = downstream_task(ctr, ftr, cte, fte, predictor="gradient_boosting_classifier",
                          train_sizes=(30, 120), random_state=4)
    for n in (30, 120):
        for k in range(3):
            model = GradientBoostingClassifier(random_state=4).fit(ctr[:n], ftr[:n, k])
            assert out[f"{n}:train_accuracy_factor_{k}"] == np.mean(model.predict(ctr[:n]) == ftr[:n, k])
            assert out[f"{n}:test_accuracy_factor_{k}"] == np.mean(model.predict(cte) == fte[:, k])
    again = downstream_task(ctr, ftr, cte, fte, predictor="gradient_boosting_classifier",
                            train_sizes=(30,), random_state=np.random.RandomState(9))
    assert again == downstream_task(ctr, ftr, cte, fte, predictor="gradient_boosting_classifier",
                                    train_sizes=(30,), random_state=np.random.RandomState(9))


def test_perfect_duplicated_and_noise_codes():
    rng = np.random.default_rng(0)
    f = rng.integers(0, [3, 4], size=(300, 2))
    ft = rng.integers(0, [3, 4], size=(200, 2))
    gbt = {"predictor": "gradient_boosting_classifier", "train_sizes": (100, 300)}
    perfect = downstream_task(f.astype(float), f, ft.astype(float), ft, **gbt)
    assert perfect["100:min_test_accuracy"] == 1.0 and perfect["300:mean_test_accuracy"] == 1.0
    dup = downstream_task(np.c_[f, f].astype(float), f, np.c_[ft, ft].astype(float), ft, **gbt)
    assert dup["300:mean_test_accuracy"] == 1.0
    # One-hot codes are linearly separable: the logistic regression is exact too.
    onehot = np.c_[np.eye(3)[f[:, 0]], np.eye(4)[f[:, 1]]]
    onehot_t = np.c_[np.eye(3)[ft[:, 0]], np.eye(4)[ft[:, 1]]]
    assert downstream_task(onehot, f, onehot_t, ft, train_sizes=(300,))["300:min_test_accuracy"] == 1.0
    noise = downstream_task(rng.normal(size=(300, 3)), f, rng.normal(size=(200, 3)), ft, **gbt)
    assert noise["300:mean_test_accuracy"] < 0.45  # chance: (1/3 + 1/4) / 2 = 0.29


def test_bad_input():
    ctr, ftr, cte, fte = data()
    with pytest.raises(ValueError, match="predictor: unknown 'svm'"):
        downstream_task(ctr, ftr, cte, fte, predictor="svm")
    with pytest.raises(ValueError, match="train_sizes: 1000 training points requested"):
        downstream_task(ctr, ftr, cte, fte, train_sizes=(10, 1000))
    with pytest.raises(ValueError, match="train_sizes: expected a non-empty sequence"):
        downstream_task(ctr, ftr, cte, fte, train_sizes=())
    with pytest.raises(ValueError, match="factors_train: factor 0 has a single value in the first 3"):
        downstream_task(ctr, np.c_[np.r_[0, 0, 0, ftr[3:, 0]], ftr[:, 1:]], cte, fte, train_sizes=(3,))
    with pytest.raises(ValueError, match="codes_test: has 3 columns"):
        downstream_task(ctr, ftr, cte[:, :3], fte, train_sizes=(10,))
    with pytest.raises(ValueError, match="codes_train: contains NaN"):
        downstream_task(np.full_like(ctr, np.nan), ftr, cte, fte, train_sizes=(10,))
    with pytest.raises(ValueError, match="random_state"):
        downstream_task(ctr, ftr, cte, fte, train_sizes=(10,), random_state=None)
