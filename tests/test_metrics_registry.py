"""The evaluator registry: every declaration is complete, and every evaluator emits exactly
the records it declares on a tiny model and dataset (one test instead of restated constants)."""
import functools
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench import metrics
from disbench.metrics import EVALUATORS, HIGHER_IS_BETTER, TOLERANCES, evaluate, registry
from disbench.sweeps import regress


def test_every_evaluator_declares_its_records_directions_tolerances_and_needs():
    assert EVALUATORS, "no evaluator registered"
    names = [r.name for e in EVALUATORS.values() for r in e.records]
    assert len(names) == len(set(names)), "a record name is declared by two evaluators"
    for name, e in EVALUATORS.items():
        assert e.name == name and callable(e.fn)
        assert e.records, f"{name} declares no records"
        for r in e.records:
            assert isinstance(r.higher_is_better, bool), (name, r)
            assert isinstance(r.tolerance, float) and r.tolerance >= 0, (name, r)
        assert e.needs <= set(registry.NEEDS), (name, e.needs)
        assert metrics.needs(name) == e.needs


def test_derived_views_are_the_registry():
    declared = {r.name: r for e in EVALUATORS.values() for r in e.records}
    assert dict(HIGHER_IS_BETTER) == {k: r.higher_is_better for k, r in declared.items()}
    assert dict(TOLERANCES) == {k: r.tolerance for k, r in declared.items()}
    for k, r in declared.items():  # regress writes new baselines with the registry's tolerances
        assert regress.default_tolerance(k) == r.tolerance
    assert regress.default_tolerance("not_a_metric") == registry.DEFAULT_TOLERANCE
    with pytest.raises(TypeError):
        HIGHER_IS_BETTER["mig"] = False  # read-only
    with pytest.raises(KeyError, match="not declared"):
        registry.declared_record("not_a_metric")
    with pytest.raises(KeyError, match="unknown evaluator"):
        metrics.needs("not_an_evaluator")


# ------------------------------------------------------------- tiny models and datasets
class _Grid:
    """Ground-truth factors 3 x 4 x 5; the observation of f is f as a 1 x 1 x 3 image."""

    name, source, fingerprint = "grid", "synthetic", "grid-registry"
    factor_sizes = (3, 4, 5)

    def sample_factors(self, n, rng):
        return np.stack([rng.randint(0, s, size=n) for s in self.factor_sizes], 1)

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        return np.asarray(factors, dtype=np.uint8).reshape(len(factors), 1, 1, 3)


class _Codes(torch.nn.Module):
    """codes = factors mixed, plus small noise from the pixel values (not degenerate)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3],
                                                  [0.1, 0.0, 1.0]]))

    def encode(self, x):
        f = x.flatten(1) * 255.0
        return f @ self.w + 0.01 * torch.sin(7 * f)


class _SmallGrid(_Grid):
    """Factors 2 x 3 as a 1 x 1 x 2 image: for evaluators that fit a classifier per factor
    and class (fewer classes, fewer boosting trees)."""

    fingerprint = "small-grid-registry"
    factor_sizes = (2, 3)

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        return np.asarray(factors, dtype=np.uint8).reshape(len(factors), 1, 1, 2)


class _SmallCodes(torch.nn.Module):
    """Three codes mixing the two factors, with small noise."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3]]))

    def encode(self, x):
        z = (x.flatten(1) * 255.0) @ self.w
        return z + 0.01 * torch.sin(7 * z)


#: Evaluators that fit one or more classifiers or forests per factor and training size: they
#: get the small grid (and dci_es fewer, smaller forests) to keep this test fast.
_CLASSIFIER_HEAVY = {"downstream_lr", "downstream_gbt", "fairness", "strong_downstream",
                     "reduced_downstream", "dci_es"}
#: Points drawn for every evaluator's tiny run.
_NUM_TRAIN, _NUM_TEST = 200, 20


class _Images(torch.nn.Module):
    """reconstruct = 0.5 x; sample = uniform noise; elbo = -||x||^2."""

    def __init__(self, shape=(1, 12, 12)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.shape = shape

    def reconstruct(self, x):
        return 0.5 * x

    def sample(self, n, generator=None):
        return torch.rand(n, *self.shape, generator=generator)

    def elbo(self, x):
        return -(x.flatten(1) ** 2).sum(1)


class _PixelCodes(torch.nn.Module):
    """codes = the first 6 pixels (an encoder for image sets)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def encode(self, x):
        return self.w * x.flatten(1)[:, :6]


def _labelled(name="toyset", n=40, size=12):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    images = (rng.integers(0, 80, (n, 1, size, size)) + 80 * labels[:, None, None, None])
    return SimpleNamespace(images=images.astype(np.uint8), labels=labels, num_classes=3,
                           name=name, split="train", source="synthetic", fingerprint=f"{name}-0")


def _stand_in_inception():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 9, stride=8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def _setup(name, monkeypatch):
    """(model, dataset, evaluate keywords) for evaluator ``name``, chosen by its needs."""
    needs = EVALUATORS[name].needs
    if "sequence" in needs:
        return _sequence_setup(monkeypatch)
    if "ood_pair" in needs:
        sets = {"mnist": _labelled("mnist", 30, 28), "omniglot": _labelled("omniglot", 20, 28)}

        def loader(name, **kw):
            return sets[name]

        return _Images((1, 28, 28)), sets["mnist"], {"load_dataset": loader}
    if {"images", "encoder", "load_dataset"} <= needs:  # codes of another split (hoyer_test)
        test = _labelled("toyset", 30)
        # `name` unused here: the signature of load_dataset
        return _PixelCodes(), _labelled(), {"load_dataset": lambda name, **kw: test}  # noqa: ARG005
    if needs & {"images", "labels"}:
        from disbench.metrics import feature_classifier as fc
        from disbench.metrics import inception

        monkeypatch.setattr(inception, "load_inception", lambda *a, **k: _stand_in_inception())
        monkeypatch.setattr(fc, "ClassifierConfig",
                            functools.partial(fc.ClassifierConfig, steps=5, feature_dim=4))
        return _Images(), _labelled(), {}
    if "factors" in needs and name in _CLASSIFIER_HEAVY:
        dci_es = importlib.import_module("disbench.metrics.dci_es")  # the module, not the function
        monkeypatch.setattr(dci_es, "EVALUATOR_PROBES",
                            dci_es.Probes(depths=(1, 2, 4), n_estimators=3, seeds=(0, 1)))
        return _SmallCodes(), _SmallGrid(), {}
    if "factors" in needs:
        return _Codes(), _Grid(), {}
    pytest.fail(f"no tiny setup for evaluator {name!r} with needs {sorted(needs)}: add one")


def _sequence_setup(monkeypatch):
    from disbench.baselines.dsvae import DSVAE, DSVAEHparams
    from disbench.datasets import get
    from disbench.metrics import judge_net

    ds = get("sprites", source="synthetic", split="train", max_characters=4)
    torch.manual_seed(0)
    judge = judge_net.SpritesJudge(judge_net.JudgeConfig(width=4, pool=4, hidden=8))
    monkeypatch.setattr(judge_net, "get_judge", lambda *a, **k: judge)  # untrained: cheap
    return DSVAE(DSVAEHparams(static_dim=4, dynamic_dim=2, hidden_dim=8)), ds, {}


def _expected(name, num_train):
    """The declared records; the downstream task records only its training sizes <= num_train
    (``downstream_<predictor>_<n>_<part>``)."""
    names = EVALUATORS[name].record_names
    if name.startswith("downstream_"):
        names = [r for r in names if int(r.split("_")[2]) <= num_train]
    return sorted(names)


#: Evaluators computed across runs (needs "runs"), not by evaluate(): tested below.
_ACROSS_RUNS = sorted(n for n, e in EVALUATORS.items() if "runs" in e.needs)


@pytest.mark.parametrize("name", sorted(set(EVALUATORS) - set(_ACROSS_RUNS)))
@pytest.mark.usefixtures("empty_cache")
def test_emitted_records_are_exactly_the_declared_ones(name, monkeypatch):
    model, dataset, kw = _setup(name, monkeypatch)
    records = evaluate(model, dataset, [name], num_train=_NUM_TRAIN, num_test=_NUM_TEST,
                       batch_size=8, device="cpu", **kw)
    assert sorted(r["metric"] for r in records) == _expected(name, _NUM_TRAIN)
    for r in records:
        assert r["higher_is_better"] is HIGHER_IS_BETTER[r["metric"]]
        assert np.isfinite(r["value"]), r


def test_downstream_records_stop_at_the_train_points():
    """Sizes 10 and 100 fit in 200 train points, 1000 and 10000 do not (and are declared)."""
    for predictor in ("lr", "gbt"):
        declared = set(EVALUATORS[f"downstream_{predictor}"].record_names)
        assert {int(r.split("_")[2]) for r in declared} == {10, 100, 1000, 10000}
        assert {int(r.split("_")[2]) for r in _expected(f"downstream_{predictor}", 200)} == {10, 100}


def test_scores_of_several_runs_are_declared_and_refused_per_run():
    """udr is declared (direction, tolerance: the leaderboard's and regress's vocabulary) but
    compares runs: evaluate() refuses it with a pointer to 'disbench udr'; the runner's records
    are checked in tests/test_udr_runner.py."""
    from disbench.errors import DisbenchError

    assert _ACROSS_RUNS == ["udr"]
    assert HIGHER_IS_BETTER["udr"] is True and TOLERANCES["udr"] == 0.05
    with pytest.raises(DisbenchError, match="disbench udr RUNS_DIR"):
        evaluate(_Codes(), _Grid(), ["udr"], num_train=_NUM_TRAIN, num_test=_NUM_TEST)
