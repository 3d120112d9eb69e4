import sys
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from disbench.errors import DisbenchError
from disbench.metrics import inception
from disbench.metrics.inception import (
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_URL,
    inception_features,
)


def _stand_in():
    """A small randomly initialised network in place of Inception (tests have no weights)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 7, stride=4), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )


def _images(n=64, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, 28, 28)).astype(np.uint8)


def test_batch_size_independent():
    net, imgs = _stand_in(), _images()
    f1 = inception_features(imgs, network=net, batch_size=1)
    f64 = inception_features(imgs, network=net, batch_size=64)
    f10 = inception_features(imgs, network=net, batch_size=10)  # ragged last batch
    assert f1.shape == (64, 16) and f1.dtype == np.float64
    np.testing.assert_allclose(f1, f64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f10, f64, rtol=1e-5, atol=1e-6)


def test_preprocessing_is_the_standard_one():
    net, imgs = _stand_in(), _images(8)
    feats = inception_features(imgs, network=net)
    # independent: [0, 1] floats, 3 channels, bilinear 299 (pytorch-fid's resize_input)
    x = torch.from_numpy(imgs).float() / 255
    x = F.interpolate(x.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = net(x).double().numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    # uint8 and [0, 1] float give the same features; grayscale == repeated RGB
    as_float = inception_features(imgs.astype(np.float32) / 255, network=net)
    np.testing.assert_allclose(as_float, feats, rtol=1e-5, atol=1e-6)
    rgb = inception_features(np.repeat(imgs, 3, axis=1), network=net)
    np.testing.assert_allclose(rgb, feats, rtol=1e-5, atol=1e-6)
    assert net.training  # mode restored


def test_bad_images():
    net = _stand_in()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) with C = 1 or 3"):
        inception_features(np.zeros((2, 2, 28, 28), np.uint8), network=net)
    with pytest.raises(ValueError, match=r"float in \[0, 1\]"):
        inception_features(np.full((2, 1, 28, 28), 2.0, np.float32), network=net)
    with pytest.raises(ValueError, match="either weights= .* or network="):
        inception_features(_images(2), network=net, weights="x.pth")


def test_missing_weights_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected_place = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    with pytest.raises(DisbenchError) as err:
        inception_features(_images(2))
    msg = str(err.value)
    assert FID_WEIGHTS_NAME in msg and FID_WEIGHTS_URL in msg and str(expected_place) in msg
    with pytest.raises(DisbenchError, match="given as weights="):
        inception_features(_images(2), weights=tmp_path / "nope.pth")


def test_missing_extra_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # makes `import pytorch_fid` fail
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", None)
    weights = tmp_path / FID_WEIGHTS_NAME
    weights.write_bytes(b"present")  # only the extra is missing
    with pytest.raises(DisbenchError, match=r"pip install 'disbench\[fid\]'") as err:
        inception_features(_images(2), weights=weights)
    assert "not found" not in str(err.value)  # the weights are there: only the extra is named


def test_real_network_matches_pytorch_fid(tmp_path):
    """With the extra installed: our pipeline == pytorch-fid's own (random FID-Inception
    weights saved in the real file's key format, since tests have no weights)."""
    pfi = pytest.importorskip("pytorch_fid.inception", reason="needs the 'fid' extra")
    import torchvision

    torch.manual_seed(0)
    captured = {}

    # record the randomly initialised state dict
    def capture(self, state_dict, *a, **k):  # noqa: ARG001 (stands in for load_state_dict)
        captured.update(self.state_dict())

    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(torchvision.models.inception.Inception3, "load_state_dict", capture):
        pfi.fid_inception_v3()
    weights = tmp_path / FID_WEIGHTS_NAME
    torch.save(captured, weights)
    imgs = _images(2)
    f1 = inception_features(imgs, weights=weights, batch_size=1, device="cpu")
    f2 = inception_features(imgs, weights=weights, batch_size=2, device="cpu")
    assert f1.shape == (2, 2048)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: captured):
        ref = pfi.InceptionV3([3]).eval()  # resizes and normalises itself
    with torch.no_grad():
        expected = ref(torch.from_numpy(imgs).float().div(255).repeat(1, 3, 1, 1))[0]
    np.testing.assert_allclose(f2, expected.flatten(1).double().numpy(), rtol=1e-5, atol=1e-6)
    inception._NETWORKS.clear()
