"""The likelihood default (issue 13, item 2): Bernoulli on logits for the image models on any
data, as the Locatello et al. study's ``bernoulli_loss`` (disentanglement_lib
``methods/shared/losses.py``: sigmoid cross-entropy with logits summed over pixels);
``likelihood=gaussian`` the named option; recorded, hashed and set explicitly in paper.yaml."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.run.config import RunConfig, non_default_hparams, resolve_hparams
from disbench.sweeps.spec import load_spec

SUITES = Path(__file__).resolve().parents[1] / "bench" / "sweeps" / "suites"


class _Data(SimpleNamespace):
    """A stand-in for a dataset: only what resolve_hparams reads."""

    def __len__(self):
        return 100


def _resolve(model, binary, **hp):
    data = _Data(image_shape=(3, 64, 64), binary=binary)
    return resolve_hparams(RunConfig(model=model, dataset="shapes3d", hparams=hp), data)


@pytest.mark.parametrize("model", ["vae", "beta_vae", "beta_tcvae", "factor_vae",
                                   "dip_vae_i", "dip_vae_ii"])
def test_image_vaes_use_bernoulli_on_non_binary_data(model):
    hp = _resolve(model, binary=False)
    assert hp["likelihood"] == "bernoulli" and hp["likelihood_scale"] is None
    # the named option gives the earlier behaviour on grey/colour data
    hp = _resolve(model, binary=False, likelihood="gaussian")
    assert hp["likelihood"] == "gaussian" and hp["likelihood_scale"] == pytest.approx(0.5 ** 0.5)


def test_wae_keeps_the_data_rule():
    assert _resolve("wae_mmd", binary=False)["likelihood"] == "gaussian"
    assert _resolve("wae_gan", binary=True)["likelihood"] == "bernoulli"
    assert _resolve("wae_mmd", binary=False, likelihood="bernoulli")["likelihood"] == "bernoulli"


def test_bernoulli_loss_is_summed_bce_with_logits_on_a_non_binary_image():
    torch.manual_seed(0)
    model = baselines.create("beta_vae", **_resolve("beta_vae", binary=False))
    x = torch.rand(3, 3, 64, 64, dtype=torch.float64).float()  # grey levels, not 0/1
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        logits = model.decoder(z).double().numpy()
        got = -model.log_likelihood(x, z).double().numpy()
    xs = x.double().numpy()
    # tf.nn.sigmoid_cross_entropy_with_logits: max(l, 0) - l x + log(1 + exp(-|l|))
    bce = np.maximum(logits, 0) - logits * xs + np.log1p(np.exp(-np.abs(logits)))
    np.testing.assert_allclose(got, bce.reshape(3, -1).sum(1), rtol=1e-5)


def test_the_likelihood_is_in_the_run_id():
    base = {"model": "beta_vae", "dataset": "shapes3d", "steps": 10}
    default = RunConfig(**base).run_id()
    assert RunConfig(**base, hparams={"likelihood": "bernoulli"}).run_id() == default
    assert RunConfig(**base, hparams={"likelihood": "gaussian"}).run_id() != default
    # a data-decided likelihood stays out of the id (it is a function of the dataset)
    assert "likelihood" not in RunConfig(model="wae_mmd", dataset="shapes3d").resolved().hparams
    assert RunConfig(**base).resolved().hparams["likelihood"] == "bernoulli"


def test_non_default_hparams():
    assert non_default_hparams("beta_vae", {"likelihood": "gaussian", "beta": 4}) == (
        "likelihood",)
    assert non_default_hparams("beta_vae", {"likelihood": "bernoulli"}) == ()
    assert non_default_hparams("dsvae", {"likelihood": "gaussian"}) == ()  # its own default
    assert non_default_hparams("wae_mmd", {"likelihood": "gaussian"}) == ()  # data-decided
    assert non_default_hparams("no_such_model", {"likelihood": "gaussian"}) == ()


def test_paper_suite_sets_bernoulli_for_every_model_and_dataset():
    spec = load_spec(SUITES / "paper.yaml")
    assert {d["name"] for d in spec.datasets} == {"dsprites", "shapes3d"}
    assert spec.models and all(m["hparams"]["likelihood"] == "bernoulli" for m in spec.models)
