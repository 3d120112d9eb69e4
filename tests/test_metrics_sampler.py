"""Sampler layer: FactorVAE / beta-VAE scores and evaluate(), on a tiny fake ground-truth set."""
import numpy as np
import pytest
import torch
from disbench.errors import DisbenchError
from disbench.metrics import (
    EVALUATORS,
    HIGHER_IS_BETTER,
    Record,
    beta_vae_score,
    evaluate,
    factor_vae_score,
    register_evaluator,
)
from torch import nn


class GridData:
    """Factor grid 3 x 4 x 5; the observation of factors f is f itself as a 1 x 1 x K image."""

    name = "grid"
    source = "synthetic"
    fingerprint = "grid-test"
    factor_sizes = (3, 4, 5)
    num_factors = 3

    def __init__(self):
        self.rendered = 0

    def sample_factors(self, n, rng):
        return np.stack([rng.randint(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        self.rendered += len(factors)
        return np.asarray(factors, dtype=np.uint8).reshape(len(factors), 1, 1, 3)


def perfect(obs):
    return obs.reshape(len(obs), -1).astype(np.float64)


def noise_fn(seed=0):
    gen = np.random.default_rng(seed)
    return lambda obs: gen.normal(size=(len(obs), 4))


SMALL = {"num_train": 300, "num_eval": 200}


def test_factor_vae_perfect_is_one_and_prunes_collapsed_dims():
    out = factor_vae_score(GridData(), perfect, 0, num_variance_estimate=500, **SMALL)
    assert out == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}
    # A constant and a tiny (std 0.01 < 0.05) extra dimension are pruned and change nothing.
    def padded(obs):
        z = perfect(obs)
        tiny = 0.01 * np.random.default_rng(len(obs)).normal(size=(len(obs), 1))
        return np.c_[z, np.zeros(len(obs)), tiny]
    out = factor_vae_score(GridData(), padded, 0, num_variance_estimate=500, **SMALL)
    assert out == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}


def test_factor_vae_noise_near_chance_and_all_pruned():
    out = factor_vae_score(GridData(), noise_fn(), 0, num_variance_estimate=500, **SMALL)
    assert out["num_active_dims"] == 4
    assert 0.2 < out["eval_accuracy"] < 0.5  # chance 1/3
    flat = factor_vae_score(GridData(), lambda o: np.zeros((len(o), 2)), 0, **SMALL)
    assert flat == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_factor_vae_deterministic_and_renders_in_bulk():
    ds = GridData()
    a = factor_vae_score(ds, noise_fn(1), np.random.RandomState(5), num_variance_estimate=400, **SMALL)
    b = factor_vae_score(GridData(), noise_fn(1), 5, num_variance_estimate=400, **SMALL)
    assert a == b
    assert ds.rendered == 400 + 64 * (300 + 200)
    with pytest.raises(ValueError, match="random_state"):
        factor_vae_score(GridData(), perfect, None)
    with pytest.raises(ValueError, match="batch_size"):
        factor_vae_score(GridData(), perfect, 0, batch_size=1)


def test_beta_vae_perfect_and_noise():
    out = beta_vae_score(GridData(), perfect, 0, **SMALL)
    assert out == {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    out = beta_vae_score(GridData(), noise_fn(), 0, **SMALL)
    assert out["eval_accuracy"] < 0.5  # chance 1/3
    a = beta_vae_score(GridData(), noise_fn(2), 3, **SMALL)
    assert a == beta_vae_score(GridData(), noise_fn(2), 3, **SMALL)


class FactorModel(nn.Module):
    """encode returns the factors (perfect), optionally rotated; posterior adds a logvar."""

    def __init__(self, mix=None):
        super().__init__()
        self.w = nn.Parameter(torch.eye(3) if mix is None else torch.as_tensor(mix, dtype=torch.float32))
        self.calls = 0

    def encode(self, x):
        self.calls += 1
        assert x.dtype == torch.float32 and float(x.max()) <= 1.0 and not torch.is_grad_enabled()
        return (x.flatten(1) * 255.0) @ self.w

    def posterior(self, x):
        mean = self.encode(x)
        return mean, torch.full_like(mean, -20.0)  # essentially deterministic samples


def test_evaluate_perfect_model_records():
    model = FactorModel()
    recs = evaluate(model, GridData(), ["mig", "dci", "sap", "modularity", "unsupervised", "hoyer"],
                    num_train=600, num_test=300, random_state=0, batch_size=128)
    by = {r["metric"]: r for r in recs}
    # Random (not full-grid) points: the other codes keep a little plug-in MI with each factor.
    assert 0.97 < by["mig"]["value"] <= 1.0
    assert by["dci_disentanglement"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert by["dci_completeness"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert by["dci_informativeness_test"]["value"] == 1.0
    assert by["modularity"]["value"] == pytest.approx(1.0, abs=0.02)
    assert set(by) >= {"sap", "explicitness_test", "gaussian_total_correlation", "hoyer"}
    for r in recs:
        assert set(r) == {"metric", "value", "higher_is_better", "version", "spec"}
        assert r["higher_is_better"] is HIGHER_IS_BETTER[r["metric"]]
        assert r["spec"]["seed"] == 0 and r["spec"]["codes"] == "mean"
        assert r["spec"]["dataset"] == "grid" and r["spec"]["fingerprint"] == "grid-test"
    assert by["mig"]["spec"]["points"] == 600 and "20 equal-width bins" in by["mig"]["spec"]["discretisation"]
    assert "GradientBoostingClassifier" in by["dci_disentanglement"]["spec"]["estimator"]
    # Codes are drawn once for all metrics: train (600) + test (300) images in batches of 128.
    assert model.calls == 5 + 3
    assert model.training  # mode restored


def test_evaluate_mixed_model_scores_lower_and_is_deterministic():
    mix = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0]])
    kw = {"num_train": 500, "num_test": 200, "random_state": 3}
    a = evaluate(FactorModel(mix), GridData(), "mig,factor_vae,beta_vae", **kw)
    b = evaluate(FactorModel(mix), GridData(), "mig,factor_vae,beta_vae", **kw)
    assert a == b
    by = {r["metric"]: r["value"] for r in a}
    assert by["mig"] < 0.5
    perfect_recs = evaluate(FactorModel(), GridData(), ["factor_vae", "beta_vae"], **kw)
    perfect_by = {r["metric"]: r["value"] for r in perfect_recs}
    assert perfect_by["factor_vae_score"] == 1.0 and perfect_by["beta_vae_score"] == 1.0
    assert by["factor_vae_score"] < 1.0


def test_evaluate_sampled_codes_and_errors():
    recs = evaluate(FactorModel(), GridData(), ["mig"], num_train=400, num_test=100, codes="sampled")
    assert recs[0]["spec"]["codes"] == "sampled"
    assert 0.97 < recs[0]["value"] <= 1.0

    class MeanOnly(nn.Module):
        def encode(self, x):
            return x.flatten(1)

    with pytest.raises(DisbenchError, match="codes='sampled' needs a stochastic encoder"):
        evaluate(MeanOnly(), GridData(), ["mig"], num_train=100, codes="sampled")
    with pytest.raises(DisbenchError, match="unknown metric.*available: .*mig"):
        evaluate(FactorModel(), GridData(), ["nope"])
    with pytest.raises(DisbenchError, match="codes must be one of"):
        evaluate(FactorModel(), GridData(), ["mig"], codes="median")


def test_register_evaluator_gets_shared_context():
    seen = {}
    probe_records = [Record("_test_probe", higher_is_better=True)]

    @register_evaluator("_test_probe", records=probe_records, needs=("factors", "encoder"))
    def probe(ctx):
        codes, _ = ctx.train_points()
        seen["same"] = ctx.train_points()[0] is codes
        seen["model"] = ctx.model
        return [ctx.record("_test_probe", float(codes.shape[0]), version="0")]

    try:
        model = FactorModel()
        recs = evaluate(model, GridData(), ["mig", "_test_probe"], num_train=100, num_test=50)
        assert recs[-1]["metric"] == "_test_probe" and recs[-1]["value"] == 100.0 and seen["same"]
        assert recs[-1]["higher_is_better"] is True and seen["model"] is model
        assert HIGHER_IS_BETTER["_test_probe"] is True  # the view follows the registry
        with pytest.raises(ValueError, match="already registered"):
            register_evaluator("_test_probe", records=probe_records,
                               needs=())(lambda ctx: [])  # noqa: ARG005 (an evaluator's fn(ctx))
        with pytest.raises(ValueError, match="already declared by evaluator 'mig'"):
            register_evaluator("_test_other", records=[Record("mig", True)], needs=())
        with pytest.raises(ValueError, match="unknown needs"):
            register_evaluator("_test_other", records=[Record("_x", True)], needs=("factor",))
    finally:
        EVALUATORS.pop("_test_probe", None)
    assert "_test_probe" not in HIGHER_IS_BETTER


def test_evaluate_rejects_undeclared_records():
    @register_evaluator("_test_stray", records=[Record("_test_stray", True)], needs=())
    def stray(ctx):  # noqa: ARG001 (an evaluator's fn(ctx))
        return [{"metric": "_not_declared", "value": 1.0, "higher_is_better": True,
                 "version": "0", "spec": {}}]

    try:
        with pytest.raises(RuntimeError, match="_not_declared.*does not declare"):
            evaluate(FactorModel(), GridData(), ["_test_stray"])
    finally:
        EVALUATORS.pop("_test_stray", None)
