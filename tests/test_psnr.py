import math

import numpy as np
import pytest
import torch
from disbench.metrics.psnr import psnr, psnr_per_image, psnr_pooled


def _pair():
    x = np.zeros((2, 1, 2, 2))
    y = np.zeros((2, 1, 2, 2))
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1, 0, 0, 0] = 0.5  # MSE 0.25 / 4 = 0.0625 -> 10 log10(16) dB
    return x, y


def test_per_image_and_mean_hand_computed():
    x, y = _pair()
    per = psnr_per_image(x, y, data_range=1.0)
    np.testing.assert_allclose(per, [20.0, 10 * math.log10(16.0)], rtol=1e-12)
    assert psnr(x, y, data_range=1.0) == pytest.approx((20.0 + 10 * math.log10(16.0)) / 2, rel=1e-12)


def test_pooled_is_a_different_aggregate():
    x, y = _pair()
    # pooled MSE = (0.01 + 0.0625) / 2
    assert psnr_pooled(x, y, data_range=1.0) == pytest.approx(-10 * math.log10(0.03625), rel=1e-12)
    assert psnr_pooled(x, y, data_range=1.0) < psnr(x, y, data_range=1.0)


def test_uint8_range_and_symmetry():
    x = np.zeros((3, 3, 4, 4), dtype=np.uint8)
    y = np.ones((3, 3, 4, 4), dtype=np.uint8)  # error of 1 everywhere; no uint8 wrap-around
    expected = 20 * math.log10(255.0)
    assert psnr(x, y, data_range=255) == pytest.approx(expected, rel=1e-12)
    assert psnr(y, x, data_range=255) == pytest.approx(expected, rel=1e-12)
    # data range scales the score by 20 log10(ratio)
    assert psnr(x, y, data_range=1.0) == pytest.approx(0.0, abs=1e-12)


def test_torch_input_matches_numpy():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 6, 6, generator=g)
    y = torch.rand(5, 1, 6, 6, generator=g)
    assert psnr(x, y, data_range=1.0) == pytest.approx(
        psnr(x.numpy(), y.numpy(), data_range=1.0), rel=1e-12
    )


def test_identical_images_give_inf():
    x, y = _pair()
    per = psnr_per_image(x, x, data_range=1.0)
    assert np.isinf(per).all() and (per > 0).all()
    y[0] = x[0]
    assert psnr(x, y, data_range=1.0) == math.inf
    assert math.isfinite(psnr_pooled(x, y, data_range=1.0))
    assert psnr_pooled(x, x, data_range=1.0) == math.inf


def test_data_range_is_required_and_checked():
    x, y = _pair()
    with pytest.raises(TypeError):
        psnr(x, y)  # no default: never guessed
    for bad in (0, -1.0, float("nan"), "1", None):
        with pytest.raises(ValueError, match="data_range"):
            psnr(x, y, data_range=bad)


def test_bad_input_names_the_argument():
    x, y = _pair()
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, y[:1], data_range=1.0)
    y[1, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="^y contains NaN"):
        psnr(x, y, data_range=1.0)
    with pytest.raises(ValueError, match="x must be a batch"):
        psnr(np.zeros(4), np.zeros(4), data_range=1.0)
