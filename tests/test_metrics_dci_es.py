"""DCI-ES: explicitness against the reference, closed forms, the probe loop, bad input."""
import numpy as np
import pytest
import scipy.stats
from disbench.metrics.dci_es import BASELINE_LOSSES, DISCRETE_FACTORS, dci_es, dci_es_explicitness
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

DEPTHS = [1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32]
CURVES = {
    "decreasing": [0.6, 0.5, 0.45, 0.3, 0.2, 0.15, 0.12, 0.1, 0.1, 0.09, 0.09, 0.09],
    "bumpy": [0.6, 0.62, 0.4, 0.41, 0.2, 0.25, 0.12, 0.3, 0.1, 0.1, 0.08, 0.11],
    "flat": [0.4] * 12,
    "slow": [2 / 3] * 11 + [0.0],
}
# Obtained by running andreinicolicioiu/DCI-ES at commit 9329daec (2023-08-18),
# metrics/explitcitness.py unmodified: Explitcitness().add_curve(DEPTHS, curve, baseline, name)
# then get_explitcitness(), as src/simple_gather.py does for random-forest probes.
REFERENCE = {
    ("decreasing", 1.0): 0.864516129032258, ("decreasing", 2 / 3): 0.7967741935483871,
    ("bumpy", 1.0): 0.8232258064516129, ("bumpy", 2 / 3): 0.7348387096774194,
    ("flat", 1.0): 1.0, ("flat", 2 / 3): 1.0,
    ("slow", 1.0): -0.07526881720430101, ("slow", 2 / 3): -0.6129032258064515,
}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_explicitness_matches_reference(key):
    name, baseline = key
    got = dci_es_explicitness(DEPTHS, CURVES[name], baseline_loss=baseline)
    assert got == pytest.approx(REFERENCE[key], abs=1e-14)


def test_explicitness_closed_forms():
    # A straight decline from the baseline to 0 scores 0; a drop right after the first probe
    # scores 1 - 2 * (b / 2) / (2 b) = 0.5 on capacities (1, 2, 3); a flat curve scores 1 at any
    # level (it is measured against its own minimum); running minimum: a late rise is ignored.
    assert dci_es_explicitness([1, 2, 3], [0.8, 0.4, 0.0], baseline_loss=0.8) == pytest.approx(0.0)
    assert dci_es_explicitness([1, 2, 3], [0.8, 0.0, 0.0], baseline_loss=0.8) == pytest.approx(0.5)
    assert dci_es_explicitness([1, 5], [0.9, 0.9], baseline_loss=1.0) == 1.0
    assert dci_es_explicitness([1, 2, 3], [0.8, 0.0, 0.7], baseline_loss=0.8) == pytest.approx(0.5)


def test_tables_follow_the_baseline_rule():
    sizes = {"dsprites": (3, 6, 40, 32, 32), "mpi3d": (6, 6, 2, 3, 3, 40, 40), "cars3d": (4, 24, 183)}
    for name, table in BASELINE_LOSSES.items():
        rule = [1 - 1 / s if d else 1.0
                for s, d in zip(sizes[name], DISCRETE_FACTORS[name], strict=True)]
        np.testing.assert_allclose(table, rule, atol=1e-15)


def _data(seed=0, n=240):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, [3, 4], size=(n, 2))
    c = np.c_[f[:, 0] + 0.3 * rng.normal(size=n), f[:, 1] + 0.3 * rng.normal(size=n), rng.normal(size=n)]
    return c[:160], f[:160], c[160:], f[160:]


def _entropy_scores(r):
    d = np.sum((1 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])) * r.sum(1) / r.sum())
    c = np.sum((1 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])) * r.sum(0) / r.sum())
    return d, c


def test_dci_es_matches_direct_probe_loop():
    ctr, ftr, cte, fte = _data()
    sizes, discrete, depths, seeds = (3, 4), (True, False), (1, 2, 4), (0, 1)
    out = dci_es(ctr, ftr, cte, fte, factor_sizes=sizes, discrete_factors=discrete, depths=depths,
                 n_estimators=10, seeds=seeds)
    per_seed = []
    for seed in seeds:
        scores = np.zeros((3, 2))
        imps = np.zeros((3, 3, 2))
        for p, depth in enumerate(depths):
            m0 = RandomForestClassifier(max_depth=depth, n_estimators=10, random_state=seed)
            m0.fit(ctr, ftr[:, 0])
            y1, y1t = (ftr[:, 1] / 3).astype(np.float32), (fte[:, 1] / 3).astype(np.float32)
            m1 = RandomForestRegressor(max_depth=depth, n_estimators=10, random_state=seed).fit(ctr, y1)
            scores[p] = [m0.score(cte, fte[:, 0]), m1.score(cte, y1t)]
            imps[p] = np.c_[m0.feature_importances_, m1.feature_importances_]
        e = [dci_es_explicitness(depths, 1 - scores[:, j], baseline_loss=b)
             for j, b in enumerate((2 / 3, 1.0))]
        best = int(np.argmax(scores.mean(1)))
        per_seed.append((e, *_entropy_scores(imps[best]), scores[best].mean()))
    assert out["explicitness"] == pytest.approx(np.mean([np.mean(p[0]) for p in per_seed]), abs=1e-12)
    assert out["explicitness_factor_1"] == pytest.approx(np.mean([p[0][1] for p in per_seed]), abs=1e-12)
    assert out["disentanglement"] == pytest.approx(np.mean([p[1] for p in per_seed]), abs=1e-12)
    assert out["completeness"] == pytest.approx(np.mean([p[2] for p in per_seed]), abs=1e-12)
    assert out["informativeness_test"] == pytest.approx(np.mean([p[3] for p in per_seed]), abs=1e-12)
    assert out["size"] == pytest.approx(2 / 3)


def test_perfect_codes_beat_mixed_and_noise():
    rng = np.random.default_rng(1)
    f = rng.integers(0, [3, 4], size=(300, 2))
    kw = {"factor_sizes": (3, 4), "depths": (1, 2, 4, 8), "n_estimators": 10, "seeds": (0,)}
    perfect = dci_es(f[:200].astype(float), f[:200], f[200:].astype(float), f[200:], **kw)
    assert perfect["informativeness_test"] == 1.0
    # Random-forest importances are not one-hot even for perfect codes: with max_features="sqrt"
    # each split sees one random code, so the other code also gets importance (D about 0.64).
    assert perfect["disentanglement"] > 0.5 and perfect["completeness"] > 0.5
    mixed = f @ np.array([[1.0, 1.0], [1.0, -1.0]])
    m = dci_es(mixed[:200], f[:200], mixed[200:], f[200:], **kw)
    assert m["disentanglement"] < 0.05 and m["informativeness_test"] == 1.0
    assert m["explicitness"] < perfect["explicitness"]
    noise = rng.normal(size=(300, 2))
    n = dci_es(noise[:200], f[:200], noise[200:], f[200:], **kw)
    assert n["informativeness_test"] < 0.5
    # The reference's quirk: noise gives a flat loss curve at chance level, which is measured
    # against its own minimum and so scores a high explicitness (here above the mixed codes').
    assert n["explicitness"] > m["explicitness"]


def test_bad_input():
    ctr, ftr, cte, fte = _data()
    kw = {"factor_sizes": (3, 4), "depths": (1, 2), "n_estimators": 2, "seeds": (0,)}
    with pytest.raises(ValueError, match="capacities: must be strictly increasing"):
        dci_es_explicitness([1, 1, 2], [0.5, 0.4, 0.3], baseline_loss=1.0)
    with pytest.raises(ValueError, match="losses: expected two 1-D arrays"):
        dci_es_explicitness([1, 2], [0.5], baseline_loss=1.0)
    with pytest.raises(ValueError, match="baseline_loss"):
        dci_es_explicitness([1, 2], [0.5, 0.4], baseline_loss=0.0)
    with pytest.raises(ValueError, match="factor_sizes: expected 2 sizes"):
        dci_es(ctr, ftr, cte, fte, **{**kw, "factor_sizes": (3,)})
    with pytest.raises(ValueError, match="discrete_factors: expected 2 booleans"):
        dci_es(ctr, ftr, cte, fte, discrete_factors=(True,), **kw)
    with pytest.raises(ValueError, match="baseline_losses: expected 2 positive"):
        dci_es(ctr, ftr, cte, fte, baseline_losses=(1.0, 0.0), **kw)
    with pytest.raises(ValueError, match="depths: need at least 2"):
        dci_es(ctr, ftr, cte, fte, **{**kw, "depths": (3,)})
    with pytest.raises(ValueError, match="codes_test: has 2 columns"):
        dci_es(ctr, ftr, cte[:, :2], fte, **kw)
    with pytest.raises(ValueError, match="seeds"):
        dci_es(ctr, ftr, cte, fte, **{**kw, "seeds": ()})
