"""InfoVAE: the RBF MMD on hand-made codes and the objective against an independent
computation (Zhao et al. 2019's weights, disent's MMD estimate)."""
import math

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines.info_vae import mmd_rbf
from disbench.errors import DisbenchError


def _mmd_by_hand(z, zp, z_var):
    n, d = z.shape
    k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / (2 * z_var * d))
    pp = sum(k(zp[i], zp[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    qq = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pq = sum(k(zp[i], z[j]) for i in range(n) for j in range(n)) / (n * n)
    return pp - 2 * pq + qq


def test_mmd_on_hand_made_codes():
    z = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 0.5]])
    zp = np.array([[0.1, 0.0], [-1.0, 0.5], [0.3, 0.3]])
    got = mmd_rbf(torch.tensor(z), torch.tensor(zp), 2.0)
    assert float(got) == pytest.approx(_mmd_by_hand(z, zp, 2.0), rel=1e-9)


def test_objective_against_an_independent_computation():
    torch.manual_seed(0)
    model = baselines.create("info_vae", image_shape=(1, 28, 28), latent_dim=3, alpha=-1.0,
                             **{"lambda": 3.0})
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        torch.manual_seed(4)
        got = model.loss(x, 0)
        mean, logvar = model.encoder(x)
        torch.manual_seed(4)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        zp = torch.randn_like(z)
        nll = torch.nn.functional.binary_cross_entropy_with_logits(
            model.decoder(z), x, reduction="none").flatten(1).sum(1).mean()
        kl = (0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(1)).mean()
    mmd = _mmd_by_hand(z.double().numpy(), zp.double().numpy(), 2.0)
    assert float(got["mmd"]) == pytest.approx(mmd, rel=1e-4, abs=1e-6)
    # (1 - alpha) = 2 on the KL, (alpha + lambda - 1) = 1 on the MMD
    want = float(nll) + 2.0 * float(kl) + 1.0 * mmd
    assert float(got["loss"]) == pytest.approx(want, rel=1e-5)


def test_defaults_are_disents():
    hp = baselines.create("info_vae").hparams
    assert (hp.alpha, hp.lambda_, hp.z_var) == (-0.5, 5.0, 2.0)
    with pytest.raises(DisbenchError, match="alpha must be <= 0"):
        baselines.create("info_vae", alpha=0.5)
