"""The evaluators of issue 18's metrics: each records its array function's number on the
evaluation's points (or its sampler's, on the evaluation seed's own stream), with the sizes
its docstring states. The metric functions themselves are tested in test_metrics_<name>.py."""
import importlib

import numpy as np
import pytest
import torch
from disbench.metrics import (
    dcimig,
    evaluate,
    infomec,
    irs,
    jemmig,
    mig_sup,
    z_max_var,
)
from disbench.metrics._sampling import stream
from disbench.metrics.downstream import downstream_task
from disbench.metrics.evaluators import EvalContext, EvalOptions


class Grid:
    """Factors 2 x 3 x 4; the observation of f is f as a 1 x 1 x 3 image."""

    name, source, fingerprint = "grid", "synthetic", "grid-new-evaluators"
    factor_sizes = (2, 3, 4)

    def sample_factors(self, n, rng):
        return np.stack([rng.randint(0, s, size=n) for s in self.factor_sizes], 1)

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        return np.asarray(factors, dtype=np.uint8).reshape(len(factors), 1, 1, 3)


class Grid2(Grid):
    """Factors 2 x 3 (fewer classes: fewer boosting trees), a zero third pixel."""

    fingerprint = "grid2-new-evaluators"
    factor_sizes = (2, 3)

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        f = np.c_[factors, np.zeros(len(factors), dtype=np.int64)]
        return f.astype(np.uint8).reshape(len(f), 1, 1, 3)


class Codes(torch.nn.Module):
    """Four codes: the factors mixed, plus a small deterministic wobble."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0, 0.3, 0.0, 0.1], [0.0, 1.0, 0.2, 0.0],
                                                  [0.2, 0.0, 1.0, 0.5]]))

    def encode(self, x):
        z = (x.flatten(1) * 255.0) @ self.w
        return z + 0.05 * torch.sin(5 * z + torch.arange(4.0))


OPTIONS = EvalOptions(num_train=150, num_test=40, random_state=3, batch_size=64, device="cpu")


def _points(dataset=None):
    ctx = EvalContext(model=Codes(), dataset=dataset or Grid(), options=OPTIONS)
    return ctx, ctx.train_points(), ctx.test_points()


def _values(names, dataset=None):
    records = evaluate(Codes(), dataset or Grid(), names, OPTIONS)
    return {r["metric"]: r for r in records}


def test_array_layer_evaluators_record_their_function_on_the_train_points():
    _, (codes, factors), _ = _points()
    got = _values(["irs", "mig_sup", "dcimig", "jemmig", "infomec", "z_max_var"])
    expected_irs = irs(codes, factors, factor_discretizer="histogram")
    assert got["irs"]["value"] == expected_irs["avg_score"]
    assert got["irs"]["spec"]["num_active_dims"] == 4 and got["irs"]["spec"]["points"] == 150
    for name, fn in (("mig_sup", mig_sup), ("dcimig", dcimig), ("jemmig", jemmig)):
        assert got[name]["value"] == fn(codes, factors, continuous_factors=True, num_bins=10)
    info = infomec(codes, factors, random_state=stream(3, "infomec"))
    for key in ("infom", "infoe", "infoc"):
        assert got[key]["value"] == info[key]
    assert got["z_max_var"]["value"] == z_max_var(codes, factors, random_state=stream(3, "z_max_var"))
    assert all(r["higher_is_better"] for r in got.values())


def test_downstream_evaluator_records_the_sizes_that_fit_in_the_train_points():
    _, (c_tr, f_tr), (c_te, f_te) = _points(Grid2())
    got = _values(["downstream_gbt"], Grid2())
    # 150 train points: sizes 10 and 100 of the study's 10, 100, 1000, 10000.
    assert sorted(got) == sorted(f"downstream_gbt_{n}_{part}" for n in (10, 100) for part in
                                 ("mean_test_accuracy", "mean_train_accuracy", "min_test_accuracy"))
    ref = downstream_task(c_tr, f_tr, c_te, f_te, predictor="gradient_boosting_classifier",
                          train_sizes=(10, 100), random_state=3)
    for n in (10, 100):
        for part in ("mean_test_accuracy", "mean_train_accuracy", "min_test_accuracy"):
            assert got[f"downstream_gbt_{n}_{part}"]["value"] == ref[f"{n}:{part}"]
        assert got[f"downstream_gbt_{n}_mean_test_accuracy"]["spec"]["points"] == n
    with pytest.raises(ValueError, match="num_train"):
        evaluate(Codes(), Grid(), ["downstream_lr"], OPTIONS, num_train=9)


def test_dci_es_evaluator_uses_the_reference_factor_kinds(monkeypatch):
    mod = importlib.import_module("disbench.metrics.dci_es")
    assert mod.EVALUATOR_PROBES == mod.Probes(depths=mod.DEPTHS, n_estimators=100, seeds=(0, 1))
    assert mod.reference_discrete_factors("dsprites", 5) == (True, False, False, False, False)
    assert mod.reference_discrete_factors("mpi3d_toy", 7) == mod.DISCRETE_FACTORS["mpi3d"]
    assert mod.reference_discrete_factors("dsprites", 3) is None  # another factor count
    assert mod.reference_discrete_factors("grid", 3) is None
    small = mod.Probes(depths=(1, 2, 3), n_estimators=4, seeds=(0, 1))
    monkeypatch.setattr(mod, "EVALUATOR_PROBES", small)
    _, (c_tr, f_tr), (c_te, f_te) = _points()
    got = _values(["dci_es"])
    ref = mod.dci_es(c_tr, f_tr, c_te, f_te, factor_sizes=(2, 3, 4), depths=(1, 2, 3),
                     n_estimators=4, seeds=(0, 1))
    for part, key in (("explicitness", "explicitness"), ("disentanglement", "disentanglement"),
                      ("completeness", "completeness"), ("informativeness", "informativeness_test"),
                      ("size", "size")):
        assert got[f"dci_es_{part}"]["value"] == ref[key]
    assert got["dci_es_size"]["value"] == 3 / 4


def test_fairness_evaluator_is_the_study_setting_on_its_own_stream():
    fairness = importlib.import_module("disbench.metrics.fairness").fairness
    ctx, _, _ = _points(Grid2())
    got = _values(["fairness"], Grid2())
    ref = fairness(Grid2(), ctx.representation_fn, stream(3, "fairness"), num_train=150,
                   num_test_points_per_class=100)
    assert got["fairness"]["value"] == ref["mean_fairness:mean_pred:mean_sens"]
    assert got["fairness_max"]["value"] == ref["max_fairness:mean_pred:mean_sens"]
    assert not got["fairness"]["higher_is_better"] and not got["fairness_max"]["higher_is_better"]


@pytest.mark.parametrize("module, fn_name, keys", [
    ("strong_downstream", "strong_downstream_task",
     {"strong_downstream_mean_test_accuracy": "mean_test_accuracy",
      "strong_downstream_mean_strong_test_accuracy": "mean_strong_test_accuracy",
      "strong_downstream_generalization_gap": "strong_generalization_gap"}),
    ("reduced_downstream", "reduced_downstream_task",
     {"reduced_downstream_test_accuracy_reduced_factor": "mean_test_accuracy_reduced_factor",
      "reduced_downstream_test_accuracy_other_factors": "mean_test_accuracy_other_factors"}),
])
@pytest.mark.parametrize("num_train, num_test, n, m", [(5000, 3000, 1000, 1000), (150, 40, 150, 40)])
def test_intervention_evaluators_sizes_stream_and_keys(module, fn_name, keys, num_train, num_test,
                                                        n, m, monkeypatch):
    """Sizes min(1000, num_train) / min(1000, num_test), the stream named after the evaluator,
    each record the function's key (the function is replaced by a recorder: its numbers are
    tested in its own file, the real call in test_metrics_registry)."""
    mod = importlib.import_module(f"disbench.metrics.{module}")
    calls = []

    # `representation_fn` unused here: the signature of the metric it replaces
    def recorder(dataset, representation_fn, random_state, **kw):  # noqa: ARG001
        calls.append((dataset, random_state.randint(2**31), kw))
        return {f"{n}:{key}": 0.01 * i for i, key in enumerate(keys.values())}

    monkeypatch.setattr(mod, fn_name, recorder)
    ds = Grid()
    records = evaluate(Codes(), ds, [module], OPTIONS, num_train=num_train, num_test=num_test)
    (dataset, draw, kw), = calls
    assert dataset is ds and draw == stream(3, module).randint(2**31)
    assert kw["train_sizes"] == (n,) and kw["num_test"] == m
    assert {r["metric"]: r["value"] for r in records} == {
        name: 0.01 * i for i, name in enumerate(keys)}
    assert all(r["spec"]["points"] == n and r["spec"]["test_points"] == m for r in records)


class Collapsed(Codes):
    """Codes that vary, but with std far below z_max_var's threshold 0.02."""

    def encode(self, x):
        return 1e-4 * super().encode(x)


def test_z_max_var_of_a_collapsed_model_is_recorded_as_undefined():
    (rec,) = evaluate(Collapsed(), Grid(), ["z_max_var"], OPTIONS)
    assert np.isnan(rec["value"])
    _, (codes, factors), _ = _points()
    with pytest.raises(ValueError, match="all collapsed"):  # the function itself refuses
        z_max_var(1e-4 * codes, factors)
