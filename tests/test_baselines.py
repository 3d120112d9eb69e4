"""Every registered model trains; interface, hyperparameters, likelihoods and networks."""
import math
import sys

import pytest
import torch
from disbench import baselines
from disbench.baselines.batches import LabelledBatch, PairBatch
from disbench.baselines.likelihoods import Likelihood
from disbench.baselines.networks import ConvDecoder, GaussianEncoder
from disbench.errors import DisbenchError
from torch.func import functional_call, stack_module_state, vmap


def _prior_choices(name):
    """The prior names of a model with a ``prior`` hyperparameter (from its module)."""
    cls = baselines.MODELS[name]
    if "prior" not in cls.hparam_names():
        return []
    module = sys.modules[cls.__module__]
    for attr in dir(module):
        if attr.endswith("PRIORS"):
            return sorted(getattr(module, attr))
    raise AssertionError(f"{name} has a prior hparam but its module lists no *PRIORS")


#: other hyperparameters that choose a variant of the objective, and their module's table
VARIANT_TABLES = {"aggregation": "AGGREGATIONS", "supervised_loss": "SUPERVISED_LOSSES",
                  "annealer": "ANNEALERS"}


def _variant_choices(name):
    """(hparam, value) of every non-default objective variant of a model (from its module)."""
    cls = baselines.MODELS[name]
    module = sys.modules[cls.__module__]
    defaults = cls.Hparams()
    return [(hp, v) for hp, table in VARIANT_TABLES.items() if hp in cls.hparam_names()
            for v in getattr(module, table) if v != getattr(defaults, hp)]


CASES = [(n, {}) for n in baselines.names()] + [
    (n, {"prior": p}) for n in baselines.names() for p in _prior_choices(n)
] + [(n, {hp: v}) for n in baselines.names() for hp, v in _variant_choices(n)]


def _ids(case):
    name, hp = case
    return name + "".join(f"-{v}" for v in hp.values())


def _is_sequence(name):
    return "frames" in baselines.MODELS[name].hparam_names()


def _make(name, size, channels=1, latent_dim=None, **hp):
    """A small model: sequence models get 3 frames and tiny codes."""
    if _is_sequence(name):
        hp = {"frames": 3, "static_dim": 4, "dynamic_dim": 2, "hidden_dim": 16, **hp}
    elif latent_dim is not None:
        hp["latent_dim"] = latent_dim
    if baselines.MODELS[name].batch_kind == "labelled":  # three labelled factors
        hp = {"factor_sizes": (3, 4, 5), **hp}
    return baselines.create(name, image_shape=(channels, size, size), **hp)


def _binary_batch(n, size, seed=0, frames=None):
    """White squares on black, (n, 1, size, size) or (n, frames, 1, size, size)."""
    g = torch.Generator().manual_seed(seed)
    lead = (n,) if frames is None else (n, frames)
    grid = torch.arange(size)
    pos = torch.randint(0, size - size // 4, (*lead, 2), generator=g)
    rows = (grid >= pos[..., :1]) & (grid < pos[..., :1] + size // 4)
    cols = (grid >= pos[..., 1:]) & (grid < pos[..., 1:] + size // 4)
    return (rows.unsqueeze(-1) & cols.unsqueeze(-2)).unsqueeze(-3).float()


def _images_for(model, n, seed=0):
    hp = model.hparams
    return _binary_batch(n, hp.image_shape[-1], seed, getattr(hp, "frames", None))


def _batch_for(model, n, seed=0):
    """What the model's loss takes (its batch_kind): images, pairs or a labelled batch."""
    x = _images_for(model, n, seed)
    if model.batch_kind == "pairs":  # the second image a different square; factor 0 changed
        changed = torch.zeros(n, 5, dtype=torch.bool)
        changed[:, 0] = True
        return PairBatch(x, _images_for(model, n, seed + 100), changed)
    if model.batch_kind == "labelled":
        g = torch.Generator().manual_seed(seed)
        sizes = torch.tensor(model.hparams.factor_sizes)
        labels = (torch.rand(n, len(sizes), generator=g) * sizes).floor()
        return LabelledBatch(x, _images_for(model, n, seed + 200), labels)
    assert model.batch_kind == "images"
    return x


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_every_model_trains_with_finite_losses(case):
    name, hp = case
    # 64x64 for each model; prior variants at 28x28 (the prior does not see the image size).
    size = 28 if hp else 64
    torch.manual_seed(0)
    model = _make(name, size, **hp)
    opts = model.make_optimizers()
    assert "model" in opts
    x = _batch_for(model, 8)
    for step in range(2):
        terms = model.training_step(x, step, opts)
        assert "loss" in terms
        assert all(math.isfinite(v) for v in terms.values()), terms
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", baselines.names())
def test_loss_falls_on_a_fixed_batch(name):
    torch.manual_seed(1)
    model = _make(name, 28, latent_dim=4)
    # A few times the paper's learning rate (at most 1e-3) so a dozen steps show progress.
    opts = model.make_optimizers(lr=min(3 * model.default_lr, 1e-3))
    x = _batch_for(model, 8, seed=1)
    with torch.no_grad():
        torch.manual_seed(2)
        before = float(model.loss(x, 0)["loss"])
    for step in range(12):
        model.training_step(x, step, opts)
    with torch.no_grad():
        torch.manual_seed(2)
        after = float(model.loss(x, 12)["loss"])
    assert after < before, (before, after)


@pytest.mark.parametrize("name", baselines.names())
def test_interface_shapes(name):
    torch.manual_seed(0)
    model = _make(name, 64, channels=3, latent_dim=6).eval()
    d = model.hparams.latent_dim
    x = torch.rand(_images_for(model, 5).shape[:-3] + (3, 64, 64))
    z = model.encode(x)
    assert z.shape == (5, d)
    out = model.decode(z)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert model.reconstruct(x).shape == x.shape
    s1 = model.sample(4, generator=torch.Generator().manual_seed(7))
    s2 = model.sample(4, generator=torch.Generator().manual_seed(7))
    assert s1.shape == (4, *x.shape[1:]) and torch.equal(s1, s2)
    if hasattr(model, "elbo"):
        assert model.elbo(x).shape == (5,)


@pytest.mark.parametrize("name", ["vae", "beta_vae", "beta_tcvae", "factor_vae", "dip_vae_i",
                                  "dip_vae_ii", "wae_mmd", "wae_gan", "annealed_vae",
                                  "info_vae"])
def test_functional_ensemble_friendly(name):
    """Two models stacked with torch.func: vmapped encode equals each model's own; the
    loss runs under vmap (issue 8: batched ensembles)."""
    torch.manual_seed(0)
    models = [baselines.create(name, image_shape=(1, 28, 28), latent_dim=3) for _ in range(2)]
    params, buffers = stack_module_state(models)
    base = models[0]
    x = torch.rand(2, 6, 1, 28, 28)

    def enc(p, b, xi):
        return _call(base, p, b, "encode", xi)

    codes = vmap(enc)(params, buffers, x)
    for i, m in enumerate(models):
        assert torch.allclose(codes[i], m.encode(x[i]), atol=1e-6)
    losses = vmap(lambda p, b, xi: _call(base, p, b, "loss", xi, 0)["loss"],
                  randomness="different")(params, buffers, x)
    assert losses.shape == (2,) and torch.isfinite(losses).all()


def _call(module, params, buffers, method, *args):
    """Call ``module.<method>`` with substituted parameters (torch.func.functional_call)."""

    class _Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *a):
            return getattr(self.m, method)(*a)

    wrapped = _Wrap(module)
    return functional_call(wrapped, ({f"m.{k}": v for k, v in params.items()},
                                     {f"m.{k}": v for k, v in buffers.items()}), args)


def test_unknown_hparam_lists_valid_keys():
    with pytest.raises(DisbenchError, match=r"unknown hyperparameter\(s\) gama.*valid keys:.*gamma"):
        baselines.create("factor_vae", gama=3)
    with pytest.raises(DisbenchError, match="unknown model"):
        baselines.create("no_such_model")


def test_hparam_coercion_and_validation():
    m = baselines.create("beta_vae", beta=2, image_shape=[1, 28, 28])
    assert m.hparams.beta == 2.0 and isinstance(m.hparams.beta, float)
    assert m.hparams.image_shape == (1, 28, 28)
    assert baselines.create("wae_mmd", **{"lambda": 3}).hparams.lambda_ == 3.0
    with pytest.raises(DisbenchError, match="beta must be a number"):
        baselines.create("beta_vae", beta="big")
    with pytest.raises(DisbenchError, match="latent_dim must be an integer"):
        baselines.create("vae", latent_dim=2.5)
    with pytest.raises(DisbenchError, match="image_shape must be"):
        baselines.create("vae", image_shape=(1, 32, 32))
    with pytest.raises(DisbenchError, match="likelihood must be one of"):
        baselines.create("vae", likelihood="poisson")
    with pytest.raises(DisbenchError, match="encoder must be one of"):
        baselines.create("wae_mmd", encoder="random")


def test_paper_defaults():
    assert baselines.create("beta_vae").hparams.beta == 4.0
    assert baselines.create("beta_tcvae").hparams.beta == 6.0
    fv = baselines.create("factor_vae")
    assert fv.hparams.gamma == 35.0
    opts = fv.make_optimizers()
    assert opts["model"].defaults["lr"] == 1e-4 and opts["model"].defaults["betas"] == (0.9, 0.999)
    assert opts["discriminator"].defaults["betas"] == (0.5, 0.9)
    linears = [m for m in fv.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    # disentanglement_lib's fc_discriminator: 6 hidden layers of 1000, then 2 logits.
    assert len(linears) == 7 and linears[0].out_features == 1000 and linears[-1].out_features == 2
    assert all(m.out_features == 1000 for m in linears[:-1])
    disc_ids = {id(p) for p in fv.discriminator.parameters()}
    assert not disc_ids & {id(p) for g in opts["model"].param_groups for p in g["params"]}
    d1, d2 = baselines.create("dip_vae_i").hparams, baselines.create("dip_vae_ii").hparams
    assert d1.lambda_d == 10 * d1.lambda_od and d2.lambda_d == d2.lambda_od
    assert baselines.create("wae_mmd").hparams.lambda_ == 10.0


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian", "laplace"])
def test_likelihoods_match_torch_distributions(kind):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 4, 4, generator=g)
    x = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    lik = Likelihood(kind, 0.3 if kind != "bernoulli" else None)
    mean = torch.sigmoid(logits)
    if kind == "bernoulli":
        dist = torch.distributions.Bernoulli(logits=logits)
    elif kind == "gaussian":
        dist = torch.distributions.Normal(mean, 0.3)
    else:
        dist = torch.distributions.Laplace(mean, 0.3)
    expected = dist.log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(x, logits), expected, atol=1e-5)
    assert torch.allclose(lik.mean(logits), mean)


def test_default_gaussian_scale_gives_squared_error():
    lik = Likelihood("gaussian")
    x, logits = torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    sse = ((x - torch.sigmoid(logits)) ** 2).flatten(1).sum(1)
    const = 9 * (0.5 * math.log(2 * math.pi) + math.log(math.sqrt(0.5)))
    assert torch.allclose(-lik.log_prob(x, logits), sse + const, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 64, 64), (1, 28, 28)])
def test_networks_locatello_architecture(shape):
    """The ``"paper"`` encoder: 4x4 kernels throughout; the decoder is the same for both."""
    enc, dec = GaussianEncoder(shape, 10, arch="paper"), ConvDecoder(10, shape)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert enc.mean.in_features == 256
    mean, logvar = enc(torch.rand(2, *shape))
    assert mean.shape == logvar.shape == (2, 10)
    assert dec(mean).shape == (2, *shape)
    deconvs = [m for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in deconvs] == [64, 32, 32, shape[0]]


def _tf_same(size, stride):
    """Output size of a TF "SAME" convolution (ceil(size / stride))."""
    return -(-size // stride)


# disentanglement_lib, methods/shared/architectures.py, conv_encoder (written out here):
# (filters, kernel_size, strides), all padding="same", ReLU; then dense 256 ReLU and two
# dense heads of num_latent.
DLIB_CONV_ENCODER = [(32, 4, 2), (32, 4, 2), (64, 2, 2), (64, 2, 2)]
# deconv_decoder: dense 256 ReLU, dense 1024 ReLU, reshape [4, 4, 64], then
# conv2d_transpose (filters, kernel_size, strides), padding="same"; the last is output_shape[2].
DLIB_DECONV_DECODER = [(64, 4, 2), (32, 4, 2), (32, 4, 2), (None, 4, 2)]


@pytest.mark.parametrize("channels", [1, 3])
def test_default_encoder_is_disentanglement_lib_conv_encoder(channels):
    enc = GaussianEncoder((channels, 64, 64), 10)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == DLIB_CONV_ENCODER
    assert convs[0].in_channels == channels
    # feature-map sizes of TF "SAME" padding: 64 -> 32 -> 16 -> 8 -> 4
    shapes, size = [], 64
    for filters, _, stride in DLIB_CONV_ENCODER:
        size = _tf_same(size, stride)
        shapes.append((filters, size, size))
    seen = []
    hooks = [c.register_forward_hook(lambda _m, _i, o: seen.append(tuple(o.shape[1:])))
             for c in convs]
    mean, logvar = enc(torch.rand(2, channels, 64, 64))
    for h in hooks:
        h.remove()
    assert seen == shapes == [(32, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4)]
    dense = [m for m in enc.trunk.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(4 * 4 * 64, 256)]
    assert (enc.mean.in_features, enc.mean.out_features) == (256, 10)
    assert (enc.logvar.in_features, enc.logvar.out_features) == (256, 10)
    assert mean.shape == logvar.shape == (2, 10)
    # ReLU after every convolution and after the dense layer, none on the heads
    acts = [type(m).__name__ for m in enc.trunk.net]
    assert acts == ["Conv2d", "ReLU"] * 4 + ["Flatten", "Linear", "ReLU"]


@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_is_disentanglement_lib_deconv_decoder(channels):
    dec = ConvDecoder(10, (channels, 64, 64))
    dense = [m for m in dec.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(10, 256), (256, 1024)]
    deconvs = [m for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    expected = [(f or channels, k, s) for f, k, s in DLIB_DECONV_DECODER]
    assert [(d.out_channels, d.kernel_size[0], d.stride[0]) for d in deconvs] == expected
    seen = []
    hooks = [d.register_forward_hook(lambda _m, _i, o: seen.append(tuple(o.shape[1:])))
             for d in deconvs]
    dec(torch.randn(2, 10))
    for h in hooks:
        h.remove()
    # TF conv2d_transpose "SAME", stride 2: size doubles, 4 -> 8 -> 16 -> 32 -> 64
    assert seen == [(64, 8, 8), (32, 16, 16), (32, 32, 32), (channels, 64, 64)]
    # no activation after the last layer: the outputs are logits
    assert isinstance(dec.net[-1], torch.nn.ConvTranspose2d)


def test_encoder_arch_is_a_recorded_hyperparameter():
    from disbench.run.config import RunConfig

    for name in ("vae", "beta_vae", "wae_mmd", "gwae", "ab_vae", "dsvae", "rwae_mmd"):
        m = baselines.create(name)
        assert m.hparams.to_dict()["encoder_arch"] == "dlib"
    paper = baselines.create("vae", encoder_arch="paper")
    kernels = [c.kernel_size for c in paper.modules() if isinstance(c, torch.nn.Conv2d)]
    assert kernels == [(4, 4)] * 4
    a = RunConfig(model="vae", dataset="dsprites", source="synthetic")
    b = RunConfig(model="vae", dataset="dsprites", source="synthetic",
                  hparams={"encoder_arch": "paper"})
    assert a.resolved().hparams["encoder_arch"] == "dlib"
    assert a.run_id() != b.run_id()
    with pytest.raises(DisbenchError, match="encoder_arch must be one of dlib, paper"):
        baselines.create("vae", encoder_arch="beta")
