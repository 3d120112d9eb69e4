"""MIG's device path (torch) gives the numpy reference's numbers."""
import numpy as np
import pytest
import torch
from disbench.metrics import mig
from disbench.metrics.discrete import discrete_entropy, discrete_mutual_info, histogram_discretize
from disbench.metrics.discrete_torch import (
    discrete_mutual_info_torch,
    histogram_discretize_torch,
    mig_matrix_torch,
)
from disbench.metrics.mig import mig_matrix


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    f = rng.integers(0, [3, 6, 40, 32, 32], size=(3000, 5))
    c = f @ rng.normal(size=(5, 10)) + rng.normal(size=(3000, 10))
    c[:, 3] = np.round(c[:, 3])  # many values exactly on bin edges
    return c, f


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bins_equal_numpy_exactly(data, dtype):
    c = data[0].astype(dtype)
    got = histogram_discretize_torch(torch.from_numpy(c)).numpy()
    np.testing.assert_array_equal(got, histogram_discretize(c))


def test_mi_and_entropy_equal_numpy(data):
    c, f = data
    labels = histogram_discretize(c)
    np.testing.assert_allclose(
        discrete_mutual_info_torch(torch.from_numpy(labels), torch.from_numpy(f)).numpy(),
        discrete_mutual_info(labels, f), rtol=0, atol=1e-12)
    m, h = mig_matrix_torch(torch.from_numpy(c), f)
    m_ref, h_ref = mig_matrix(c, f)
    np.testing.assert_allclose(m, m_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, discrete_entropy(f), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mig_on_cuda_equals_numpy(data):
    c, f = data
    assert mig(torch.from_numpy(c).cuda(), f) == pytest.approx(mig(c, f), abs=1e-12)
    with pytest.raises(ValueError, match="codes"):
        mig(torch.full((100, 3), float("nan"), device="cuda"), f[:100, :3])
