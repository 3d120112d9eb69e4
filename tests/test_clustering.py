"""The k-means ARI clustering score: closed-form cases and scikit-learn's own ARI."""
import numpy as np
import pytest
from disbench.metrics import clustering as C
from disbench.metrics import evaluate


def _blobs(n_per=50, k=4, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(k)[:, :3] * 10.0 if k <= 3 else rng.normal(size=(k, 3)) * 10.0
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + spread * rng.normal(size=(len(labels), 3)), labels


def test_perfect_clusters_score_one_and_a_renaming_changes_nothing():
    codes, labels = _blobs()
    assert C.kmeans_ari(codes, labels, random_state=0) == pytest.approx(1.0)
    renamed = np.array([2, 0, 3, 1])[labels]
    assert C.kmeans_ari(codes, renamed, random_state=0) == pytest.approx(1.0)
    assert C.kmeans_ari(codes, labels[:, None], random_state=0) == pytest.approx(1.0)


def test_independent_labels_score_near_zero():
    codes, _ = _blobs(n_per=250)
    labels = np.random.default_rng(1).integers(0, 4, len(codes))
    assert abs(C.kmeans_ari(codes, labels, random_state=0)) < 0.02


def test_equals_sklearn_ari_of_the_same_kmeans_assignment():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(2)
    codes = rng.normal(size=(300, 2))
    labels = (codes[:, 0] > 0).astype(int) + 2 * (codes[:, 1] > 0.3)
    pred = KMeans(n_clusters=4, n_init=10, random_state=7).fit_predict(codes)
    want = adjusted_rand_score(labels, pred)
    assert C.kmeans_ari(codes, labels, random_state=7) == pytest.approx(want, abs=1e-12)
    np.testing.assert_array_equal(C.kmeans_labels(codes, 4, random_state=7), pred)
    assert 0.3 < want < 1.0  # a real, imperfect case


def test_bad_input_is_named():
    codes, labels = _blobs()
    with pytest.raises(ValueError, match="codes"):
        C.kmeans_ari(codes[:10], labels)
    with pytest.raises(ValueError, match="labels"):
        C.kmeans_ari(codes, np.zeros(len(codes)))  # one class: nothing to cluster against
    with pytest.raises(ValueError, match="n_clusters"):
        C.kmeans_ari(codes, labels, n_clusters=1)
    with pytest.raises(ValueError, match="random_state"):
        C.kmeans_ari(codes, labels, random_state=None)


@pytest.mark.usefixtures("empty_cache")
def test_evaluator_scores_the_arms_of_pinwheel():
    import torch
    from disbench import datasets

    ds = datasets.get("pinwheel")

    class Identity(torch.nn.Module):  # codes = the stored points themselves
        def encode(self, x):
            return x.flatten(1)

    rec = evaluate(Identity(), ds, ["clustering"], num_train=800, num_test=10, device="cpu")
    (r,) = rec
    assert r["metric"] == "kmeans_ari" and r["higher_is_better"] is True
    assert r["spec"]["clusters"] == [4] and r["spec"]["points"] == 800
    # the arms spiral, so k-means on the raw points does well but not perfectly
    assert 0.3 < r["value"] < 1.0
    again = evaluate(Identity(), ds, ["clustering"], num_train=800, num_test=10, device="cpu")
    assert again[0]["value"] == r["value"]
