import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench.errors import DisbenchError
from disbench.metrics import feature_classifier as fc
from disbench.metrics import generation, inception
from disbench.metrics.psnr import psnr


class _ToyModel(torch.nn.Module):
    """reconstruct = scale * x; sample = uniform noise (from the given generator)."""

    def __init__(self, scale=1.0, shape=(1, 12, 12)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.scale, self.shape = scale, shape

    def reconstruct(self, x):
        return x * self.scale

    def sample(self, n, generator=None):
        return torch.rand(n, *self.shape, generator=generator)


def _dataset(n=40, seed=0, labelled=True):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    # class-dependent brightness so that a classifier can learn something
    images = (rng.integers(0, 80, (n, 1, 12, 12)) + 80 * labels[:, None, None, None]).astype(
        np.uint8)
    ds = SimpleNamespace(images=images, name="toyset", split="train", source="synthetic",
                         fingerprint=f"toy-{seed}")
    if labelled:
        ds.labels, ds.num_classes = labels.astype(np.int64), 3
    return ds


def _stand_in():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 9, stride=8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def test_psnr_record_matches_direct_computation():
    ds, model = _dataset(), _ToyModel(scale=0.5)
    rec = generation.psnr_record(model, ds, num_samples=30, random_state=1, batch_size=7)
    idx = np.sort(np.random.default_rng(1).choice(40, 30, replace=False))
    x = ds.images[idx] / 255.0
    assert rec["metric"] == "psnr" and rec["higher_is_better"] is True
    assert rec["value"] == pytest.approx(psnr(x, 0.5 * x, data_range=1.0), rel=1e-6)
    assert rec["spec"]["data_range"] == 1.0 and rec["spec"]["num_samples"] == 30
    assert rec["spec"]["reference"]["fingerprint"] == "toy-0"


def test_frechet_record_reconstruction_identity_is_zero_and_named(monkeypatch):
    ds, net = _dataset(), _stand_in()
    rec = generation.frechet_record(_ToyModel(), ds, features="inception", mode="reconstruction",
                                    num_samples=20, network=net)
    # a perfect autoencoder: uint8 quantisation gives back the same pixels
    assert rec["value"] == pytest.approx(0.0, abs=1e-9)
    assert rec["metric"] == "fd_sequential_recon"  # a stand-in network's score is not FID
    # with the (here stood-in) Inception loader the record is FID
    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: net)
    gen = generation.frechet_record(_ToyModel(), ds, features="inception", num_samples=20,
                                    random_state=3)
    assert gen["metric"] == "fid" and gen["higher_is_better"] is False
    assert gen["value"] > 0
    spec = gen["spec"]
    assert spec["features"] == "inception_v3_pool3" and spec["num_samples"] == 20
    assert spec["weights"] == inception.FID_WEIGHTS_NAME
    again = generation.frechet_record(_ToyModel(), ds, features="inception", num_samples=20,
                                      random_state=3)
    assert again["value"] == gen["value"]  # seeded: reproducible


def test_fid_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(DisbenchError, match=inception.FID_WEIGHTS_NAME):
        generation.frechet_record(_ToyModel(), _dataset(), num_samples=4)


def test_feature_classifier_cached_with_checksum(empty_cache):
    ds, cfg = _dataset(60), fc.ClassifierConfig(steps=30, batch_size=16, feature_dim=8)
    net, info = fc.get_feature_classifier(ds, cfg, device="cpu")
    path = fc.cache_path(ds, cfg)
    assert path.parent == empty_cache / "feature_classifiers"
    assert path.name.startswith("toyset-") and path.name == info["cache_file"]
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.is_file()
    assert 0.0 <= info["holdout_accuracy"] <= 1.0 and info["num_holdout"] == 6
    net2, _ = fc.get_feature_classifier(ds, cfg, device="cpu")  # loaded, not retrained
    for a, b in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # same config and seed -> same network (deterministic training)
    net3, _ = fc.train_feature_classifier(ds, cfg, device="cpu")
    for a, b in zip(net.state_dict().values(), net3.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a corrupted cache file fails the checksum: an error naming it and the rebuild, never a
    # silent retrain; once deleted it is trained again
    path.write_bytes(b"corrupt")
    with pytest.raises(DisbenchError, match=f"{path.name}: sha256 does not match.*disbench "
                                            "evaluate RUN_DIR --metrics fd_classifier"):
        fc.get_feature_classifier(ds, cfg, device="cpu")
    path.unlink()
    fc.get_feature_classifier(ds, cfg, device="cpu")
    assert path.stat().st_size > 100
    assert sidecar.read_text().split()[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    # a different config is a different file
    assert fc.cache_path(ds, fc.ClassifierConfig(steps=31)) != path


@pytest.mark.usefixtures("empty_cache")
def test_fd_classifier_records():
    ds = _dataset(60)
    cfg = fc.ClassifierConfig(steps=20, batch_size=16, feature_dim=8)
    rec = generation.frechet_record(_ToyModel(), ds, features="classifier",
                                    mode="reconstruction", num_samples=30, classifier_config=cfg)
    assert rec["metric"] == "fd_classifier_recon" and rec["value"] == pytest.approx(0, abs=1e-9)
    gen = generation.frechet_record(_ToyModel(), ds, features="classifier", num_samples=30,
                                    classifier_config=cfg)
    assert gen["metric"] == "fd_classifier" and gen["value"] > 0
    assert gen["spec"]["classifier"]["dataset_fingerprint"] == "toy-0"
    assert gen["spec"]["feature_dim"] == 8
    with pytest.raises(DisbenchError, match="labelled dataset"):
        generation.frechet_record(_ToyModel(), _dataset(labelled=False), features="classifier")


def test_ood_record_needs_a_known_pair():
    with pytest.raises(DisbenchError, match="no out-of-distribution set"):
        generation.ood_record(_ToyModel(), _dataset())
    assert generation.OOD_PAIRS["mnist"] == ("omniglot", "evaluation")


def test_evaluators_take_evaluate_options():
    from disbench.metrics import evaluate

    ds, model = _dataset(), _ToyModel(scale=0.5)
    recs = evaluate(model, ds, ["psnr"], num_train=100, num_test=25, codes="mean",
                    random_state=2, batch_size=8)
    assert [r["metric"] for r in recs] == ["psnr"] and recs[0]["spec"]["num_samples"] == 25
    direct = generation.psnr_record(model, ds, num_samples=25, random_state=2)
    assert recs[0]["value"] == direct["value"]
