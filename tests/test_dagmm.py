"""DAGMM: the GMM estimates and energy against independent computations; it trains."""
import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines import dagmm as D
from scipy.stats import multivariate_normal


def _params():
    phi = np.array([0.2, 0.5, 0.3])
    mean = np.array([[0.0, 0.0], [2.0, -1.0], [-1.5, 1.0]])
    cov = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 0.4]],
                    [[2.0, -0.7], [-0.7, 1.0]]])
    return phi, mean, cov


def test_energy_is_the_negative_log_density_of_the_mixture():
    phi, mean, cov = _params()
    z = np.random.default_rng(0).normal(size=(7, 2)) * 2
    dens = sum(p * multivariate_normal(m, c).pdf(z) for p, m, c in zip(phi, mean, cov,
                                                                        strict=True))
    got = D.gmm_energy(*(torch.tensor(a) for a in (z, phi, mean, cov)))
    np.testing.assert_allclose(got.numpy(), -np.log(dens), rtol=1e-10)
    pen = D.covariance_penalty(torch.tensor(cov))
    assert float(pen) == pytest.approx(sum(1 / c[j, j] for c in cov for j in range(2)))


def test_gmm_parameters_are_the_membership_weighted_moments():
    rng = np.random.default_rng(1)
    z, gamma = rng.normal(size=(40, 3)), rng.dirichlet(np.ones(2), size=40)
    phi, mean, cov = (t.numpy() for t in D.gmm_parameters(torch.tensor(z), torch.tensor(gamma)))
    for k in range(2):
        w = gamma[:, k]
        mu = (w[:, None] * z).sum(0) / w.sum()
        sig = np.einsum("n,ni,nj->ij", w, z - mu, z - mu) / w.sum() + D.COV_EPS * np.eye(3)
        np.testing.assert_allclose(phi[k], w.mean())
        np.testing.assert_allclose(mean[k], mu, rtol=1e-10)
        np.testing.assert_allclose(cov[k], sig, rtol=1e-10)


def test_reconstruction_features_relative_distance_and_cosine():
    x = torch.tensor([[3.0, 4.0]])
    y = torch.tensor([[3.0, 0.0]])
    rel, cos = D.reconstruction_features(x, y)[0].tolist()
    assert rel == pytest.approx(4.0 / (5.0 + D.FEATURE_EPS))
    assert cos == pytest.approx(9.0 / (15.0 + D.FEATURE_EPS))


def _model(**kw):
    torch.manual_seed(0)
    return baselines.create("dagmm", image_shape=(1, 28, 28), latent_dim=3, **kw)


@pytest.mark.parametrize("gmm_input", ["paper", "code"])
def test_objective_against_an_independent_computation(gmm_input):
    model = _model(gmm_input=gmm_input, gmm_components=3)
    x = torch.rand(16, 1, 28, 28)
    terms = {k: v.detach() for k, v in model.loss(x, 0).items()}
    with torch.no_grad():
        z_c = model.encoder(x)
        x_rec = torch.sigmoid(model.decoder(z_c))
        feats = np.concatenate([z_c.numpy(), D.reconstruction_features(x, x_rec).numpy()], 1)
        logits = model.estimation(torch.tensor(feats)).numpy().astype(np.float64)
    gamma = np.exp(logits - logits.max(1, keepdims=True))
    gamma /= gamma.sum(1, keepdims=True)
    z = feats if gmm_input == "paper" else feats[:, :3]
    assert model.gmm_dim == z.shape[1]
    penalty, dens = 0.0, np.zeros(len(z))
    for k in range(3):
        w = gamma[:, k]
        mu = (w[:, None] * z).sum(0) / w.sum()
        sig = np.einsum("n,ni,nj->ij", w, z - mu, z - mu) / w.sum() + D.COV_EPS * np.eye(len(mu))
        dens += w.mean() * multivariate_normal(mu, sig).pdf(z)
        penalty += (1 / np.diag(sig)).sum()
    energies = -np.log(dens)
    recon = ((x - x_rec) ** 2).flatten(1).sum(1).mean().item()
    assert float(terms["recon"]) == pytest.approx(recon, rel=1e-5)
    assert float(terms["energy"]) == pytest.approx(energies.mean(), rel=1e-3, abs=1e-3)
    assert float(terms["cov_penalty"]) == pytest.approx(penalty, rel=1e-3)
    assert float(terms["loss"]) == pytest.approx(
        float(terms["recon"]) + 0.1 * float(terms["energy"]) + 0.005 * float(terms["cov_penalty"]),
        rel=1e-6)


def test_trains_with_finite_losses_loss_falls_and_running_gmm_updates():
    model = _model()
    x = torch.rand(32, 1, 28, 28)
    opts = model.make_optimizers()
    assert model.gmm_steps == 0
    first = model.train_step_tensors(x, 0, opts)
    # the first step copies the batch estimate, later steps move 10% towards it
    _, params = model._objective(x)
    assert model.gmm_steps == 1
    losses = [float(first["loss"])]
    for step in range(1, 40):
        terms = model.train_step_tensors(x, step, opts)
        assert all(np.isfinite(float(v)) for v in terms.values())
        losses.append(float(terms["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    before = model.gmm_mean.clone()
    _, (phi, mean, cov) = model._objective(x)
    model.update_gmm(phi, mean, cov)
    torch.testing.assert_close(model.gmm_mean, 0.9 * before + 0.1 * mean)
    # scores: -energy under the running mixture, one per image, higher = more in
    with torch.no_grad():
        s = model.ood_score(x)
        e = D.gmm_energy(model.features(x)[1], model.gmm_phi, model.gmm_mean, model.gmm_cov)
    assert s.shape == (32,) and torch.allclose(s, -e)
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 28, 28) and torch.isfinite(samples).all()
    assert params[0].shape == (2,)


def test_bad_hyperparameters_are_named():
    from disbench.errors import DisbenchError

    with pytest.raises(DisbenchError, match="gmm_components"):
        _model(gmm_components=1)
    with pytest.raises(DisbenchError, match="gmm_input"):
        _model(gmm_input="both")


def test_the_ood_evaluator_scores_dagmm_by_its_negated_sample_energy():
    from disbench.metrics.ood import default_scorer, ood_scores

    model = _model()
    x = torch.rand(32, 1, 28, 28)
    opts = model.make_optimizers()
    for step in range(3):
        model.train_step_tensors(x, step, opts)
    model.eval()
    assert default_scorer(model) == "energy"
    imgs = (x * 255).round().to(torch.uint8).numpy()
    got = ood_scores(model, imgs, batch_size=7)  # batches of 7: the score is per image
    with torch.no_grad():
        xf = torch.from_numpy(imgs).float() / 255
        e = D.gmm_energy(model.features(xf)[1], model.gmm_phi, model.gmm_mean, model.gmm_cov)
    np.testing.assert_allclose(got, -e.double().numpy(), rtol=1e-5, atol=1e-5)
