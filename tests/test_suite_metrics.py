"""The evaluators the paper suites added: hoyer_test and sequence_factors."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench.metrics import evaluate, hoyer_sparsity


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 4, 4)).astype(np.uint8)


class _Pixels(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def encode(self, x):
        return self.w * x.flatten(1)[:, :5] - 0.5


def test_hoyer_test_scores_the_test_split_posterior_means():
    train = SimpleNamespace(images=_images(50, 0), name="toy", source="synthetic",
                            split="train", fingerprint="t")
    test = SimpleNamespace(images=_images(30, 1), name="toy", source="synthetic",
                           split="test", fingerprint="s")
    asked = []

    def loader(name, **kw):
        asked.append((name, kw))
        return test

    model = _Pixels()
    (rec,) = evaluate(model, train, ["hoyer_test"], num_test=100, load_dataset=loader)
    assert asked == [("toy", {"source": "synthetic", "split": "test"})]
    want = hoyer_sparsity(test.images.reshape(30, -1)[:, :5] / 255.0 - 0.5)
    assert rec["value"] == pytest.approx(want, rel=1e-6)
    assert rec["spec"]["points"] == 30 and rec["spec"]["split"] == "test"
    # a larger split: a seeded subset of num_test images, the same on every call
    (sub,) = evaluate(model, train, ["hoyer_test"], num_test=10, load_dataset=loader)
    (again,) = evaluate(model, train, ["hoyer_test"], num_test=10, load_dataset=loader)
    assert sub["spec"]["points"] == 10 and sub["value"] == again["value"] != rec["value"]
    # evaluated on the test split itself: nothing else is loaded
    (own,) = evaluate(model, test, ["hoyer_test"], num_test=100)
    assert own["value"] == pytest.approx(want, rel=1e-6)


class _SeqModel(torch.nn.Module):
    """Static codes = the static labels written in the first pixels (plus noise dims);
    dynamic codes = the action label, in every frame."""

    is_sequence = True

    def __init__(self, swap=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.swap = swap

    def _labels(self, x):
        flat = x[:, 0].flatten(1) * 255.0  # first frame
        return flat[:, :4], flat[:, 4:5]

    def encode_static(self, x):
        static, action = self._labels(x)
        noise = torch.sin(17.0 * torch.arange(x.shape[0], dtype=torch.float32))[:, None]
        codes = torch.cat([static, noise, 0.5 * noise], 1)
        return torch.cat([action.repeat(1, 6)], 1) if self.swap else self.w * codes

    def encode_dynamic(self, x):
        _, action = self._labels(x)
        noise = torch.cos(13.0 * torch.arange(x.shape[0], dtype=torch.float32))[:, None]
        per_seq = torch.cat([action, noise], 1)
        return per_seq[:, None, :].repeat(1, x.shape[1], 1)


def _sequences(n=160):
    rng = np.random.default_rng(0)
    static = rng.integers(0, 6, (n, 4))
    action = rng.integers(0, 9, n)
    images = np.zeros((n, 2, 1, 3, 3), dtype=np.uint8)
    flat = images.reshape(n, 2, -1)
    flat[:, :, :4] = static[:, None, :]
    flat[:, :, 4] = action[:, None]
    return SimpleNamespace(images=images, static_labels=static, action_labels=action,
                           name="sprites", source="synthetic", split="train", fingerprint="f")


def test_sequence_factors_scores_static_and_dynamic_codes():
    ds = _sequences()
    recs = {r["metric"]: r for r in evaluate(_SeqModel(), ds, ["sequence_factors"],
                                             num_train=80, num_test=40)}
    assert recs["static_dci_informativeness_test"]["value"] == pytest.approx(1.0)
    assert recs["dynamic_dci_informativeness_test"]["value"] == pytest.approx(1.0)
    assert recs["static_dci_disentanglement"]["value"] > 0.9
    assert recs["static_mig"]["value"] > 0.5 and recs["dynamic_mig"]["value"] > 0.5
    assert recs["static_mig"]["spec"]["sequences"] == 80
    assert recs["static_mig"]["spec"]["test_sequences"] == 40
    # static codes that hold only the action carry nothing about the static factors
    bad = {r["metric"]: r["value"] for r in evaluate(_SeqModel(swap=True), ds,
                                                     ["sequence_factors"], num_train=60,
                                                     num_test=30)}
    assert bad["static_mig"] < 0.1 and bad["static_dci_informativeness_test"] < 0.5


def test_sequence_factors_needs_a_sequence_model():
    from disbench.errors import DisbenchError

    with pytest.raises(DisbenchError, match="sequence model"):
        evaluate(_Pixels(), _sequences(), ["sequence_factors"], num_train=50, num_test=20)
