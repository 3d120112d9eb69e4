"""The official GWAE OoD protocol (ganmodokix/gwae clu.py with vaetc@develop_may), pinned by
computations written out here: the view (ToTensor, 3 channels, bilinear Resize to 64x64), the
critic input (G(E(x)), E(x)), Omniglot's polarity, the splits and counts, samples vs means
per variant, and the variant in the record (and in metrics.json)."""
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench.errors import DisbenchError
from disbench.metrics import generation, ood


# ----------------------------------------------------------------------------- helpers
def _bilinear_axis(n_in, n_out):
    """Source indices and weights of torchvision's tensor Resize (bilinear, align_corners
    False, no antialias) along one axis: src = max((dst + 0.5) * n_in / n_out - 0.5, 0)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def _reference_view(images, size=64, channels=3, invert=False):
    """vaetc's transform written out in float64: x / 255, grey repeated, bilinear resize."""
    x = (255.0 - images) / 255.0 if invert else images / 255.0
    r0, r1, rw0, rw1 = _bilinear_axis(x.shape[2], size)
    c0, c1, cw0, cw1 = _bilinear_axis(x.shape[3], size)
    rows = x[:, :, r0, :] * rw0[:, None] + x[:, :, r1, :] * rw1[:, None]
    out = rows[:, :, :, c0] * cw0 + rows[:, :, :, c1] * cw1
    return np.repeat(out, channels // x.shape[1], axis=1)


def _bar_images(n, size, dark_ink, seed=0):
    """Stroke images: one random horizontal bar each; ink 0 on 255 (files) or 255 on 0."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 1, size, size), dtype=np.uint8)
    for i, row in enumerate(rng.integers(size // 4, 3 * size // 4, n)):
        img[i, 0, row:row + max(size // 12, 2), size // 5: 4 * size // 5] = 255
    return 255 - img if dark_ink else img


def _loader(sets, calls):
    def get(name, source="auto", split=None, **kw):
        calls.append((name, source, split, kw))
        return sets[name]
    return get


def _sets(n_in=20, n_out=100, omniglot_dark=False):
    rng = np.random.default_rng(1)
    return {
        "mnist": SimpleNamespace(images=rng.integers(0, 256, (n_in, 1, 28, 28)).astype(np.uint8),
                                 source="synthetic", fingerprint="fp-mnist"),
        "omniglot": SimpleNamespace(images=_bar_images(n_out, 105, omniglot_dark),
                                    source="synthetic", fingerprint="fp-omniglot"),
    }


class _Gauss(torch.nn.Module):
    """A stand-in gwae: q(z|x) = N(first two pixels, 0.5^2), G(z) = z, f(x, z) = sum(x) (it
    records every z it sees)."""

    registry_name = "gwae"

    def __init__(self, shape=(1, 8, 8)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.hparams = SimpleNamespace(image_shape=shape)
        self.seen = []

    def posterior(self, x):
        mean = self.w * x.flatten(1)[:, :2]
        return mean, torch.full_like(mean, 2 * math.log(0.5))

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return z

    def critic(self, x, z):
        self.seen.append(z.detach().clone())
        return x.flatten(1).sum(1)


def _small_sets(n_in=300, n_out=400):
    rng = np.random.default_rng(2)
    return {"mnist": SimpleNamespace(images=rng.integers(0, 256, (n_in, 1, 8, 8)).astype(np.uint8)),
            "omniglot": SimpleNamespace(images=rng.integers(0, 256, (n_out, 1, 8, 8)).astype(np.uint8))}


# ----------------------------------------------------------------------------- the view
def test_official_view_is_vaetc_transform():
    mnist = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28)).astype(np.uint8)
    got = ood.official_view(mnist)
    assert got.shape == (3, 3, 64, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference_view(mnist.astype(np.float64)), atol=1e-6)
    omni = _bar_images(4, 105, dark_ink=False)  # down-sampling 105 -> 64, inverted back
    np.testing.assert_allclose(ood.official_view(omni, invert=True),
                               _reference_view(omni.astype(np.float64), invert=True), atol=1e-6)
    # the model's own shape: no resize, no repeat: exactly x / 255
    np.testing.assert_array_equal(ood.official_view(mnist, (1, 28, 28)),
                                  mnist.astype(np.float32) / np.float32(255))
    with pytest.raises(ValueError, match="uint8"):
        ood.official_view(mnist.astype(np.float32))


def test_omniglot_polarity_is_dark_strokes_on_white():
    bright, dark = _bar_images(6, 105, dark_ink=False), _bar_images(6, 105, dark_ink=True)
    assert ood.ink_is_bright(bright) and not ood.ink_is_bright(dark)
    for images in (bright, dark):  # whichever polarity the loader gives
        model = _Watched(shape=(3, 64, 64))
        sets = _sets(n_in=5, n_out=64)
        sets["omniglot"].images = np.repeat(images, 11, axis=0)[:64]
        rec = ood.gwae_ood_protocol(model, load_dataset=_loader(sets, []),
                                    source="synthetic", variant="official")
        assert rec["spec"]["out"]["inverted"] is (images is bright)
        view = model.inputs[-1]  # the out set as the encoder saw it
        assert view.shape[1:] == (3, 64, 64)
        assert torch.all(view[:, :, 0, 0] == 1.0)  # background: white
        assert view.mean() > 0.8 and view.min() < 0.05  # strokes: black
        np.testing.assert_allclose(view.numpy(), _reference_view(
            _ordered(rec, sets["omniglot"].images), invert=images is bright), atol=1e-6)


class _Watched(_Gauss):
    """Also records the images its encoder sees."""

    def __init__(self, shape):
        super().__init__(shape)
        self.inputs = []

    def posterior(self, x):
        self.inputs.append(x.clone())
        return super().posterior(x)


def _ordered(rec, images):
    """The out images in the order the protocol scored them (same seed, same draws)."""
    rng = np.random.default_rng(rec["spec"]["random_state"])
    n_in = rec["spec"]["in"]["num_samples"]
    return images[ood.official_out_indices(n_in, len(images), rng)].astype(np.float64)


# ----------------------------------------------------------------------------- critic input
def test_critic_input_is_decoded_code_and_code_at_3x64x64(tmp_path):
    from disbench import baselines

    torch.manual_seed(0)
    model = baselines.create("gwae", image_shape=(3, 64, 64), latent_dim=4)
    calls = []
    forward = model.critic_net.forward
    model.critic_net.forward = lambda x, z: (calls.append((x.clone(), z.clone())),
                                             forward(x, z))[1]
    sets = _sets(n_in=20, n_out=100)
    rec = ood.gwae_ood_protocol(model, load_dataset=_loader(sets, []), source="synthetic",
                                variant="means", out_dir=tmp_path)
    assert rec["spec"]["view"] == {
        "shape": [3, 64, 64], "official_shape": True,
        "transform": "x / 255, grey repeated to the channels, bilinear resize "
                     "(align_corners=False, antialias=False)"}
    (x_in, z_in), (x_out, z_out) = calls
    assert x_in.shape == (20, 3, 64, 64) and x_out.shape == (64, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        view_in = torch.from_numpy(_reference_view(sets["mnist"].images.astype(np.float64)))
        z_ref = model.encode(view_in.float())
        torch.testing.assert_close(z_in, z_ref, atol=1e-4, rtol=1e-4)  # E(x)
        torch.testing.assert_close(x_in, model.decode(z_in))  # G(E(x)), not x
        torch.testing.assert_close(x_out, model.decode(z_out))
        assert not torch.allclose(x_in, view_in.float(), atol=0.05)
        energy = model.critic_net(model.decode(z_in), z_in)
    with np.load(tmp_path / rec["spec"]["roc_file"]) as z:
        np.testing.assert_allclose(z["scores_in"], -energy.double().numpy(), rtol=1e-5, atol=1e-6)
        assert z["scores_out"].shape == (64,)


# ----------------------------------------------------------------------------- splits, counts
def test_splits_and_counts_of_the_official_protocol():
    calls = []
    rec = ood.gwae_ood_protocol(_Gauss(), load_dataset=_loader(_small_sets(), calls),
                                source="synthetic")
    # the MNIST test split and Omniglot's evaluation split, at the loader's resolution
    assert calls == [("mnist", "synthetic", "test", {}),
                     ("omniglot", "synthetic", "evaluation", {})]
    spec = rec["spec"]
    assert spec["variant"] == "official" and spec["scorer"] == "critic_energy"
    assert (spec["in"]["dataset"], spec["in"]["split"]) == ("mnist", "test")
    assert (spec["out"]["dataset"], spec["out"]["split"]) == ("omniglot", "evaluation")
    # ceil(300 / 64) * 64 = 320 OoD images, as clu.py's ood_samples draws
    assert spec["in"]["num_samples"] == 300 and spec["out"]["num_samples"] == 320
    assert spec["view"]["official_shape"] is False  # the stand-in takes 1x8x8
    # 10,000 MNIST test images -> 10,048 Omniglot images; several passes when it is short
    rng = np.random.default_rng(0)
    assert len(ood.official_out_indices(10000, 13180, rng)) == 10048
    idx = ood.official_out_indices(130, 100, rng)
    assert len(idx) == 192 and idx.max() < 100
    for block in idx.reshape(3, 64):  # one shuffled pass of 64 (drop_last) per block
        assert len(set(block.tolist())) == 64
    with pytest.raises(ValueError, match="at least one batch of 64"):
        ood.official_out_indices(10, 63, rng)


def test_disbench_v1_keeps_the_earlier_protocol():
    calls = []
    sets = _sets(n_in=30, n_out=40)
    model = _Gauss(shape=(1, 28, 28))
    model.critic = lambda x, z: x.flatten(1).mean(1) + z[:, 0]
    rec = ood.gwae_ood_protocol(model, load_dataset=_loader(sets, calls), source="synthetic",
                                variant="disbench_v1")
    assert calls[1] == ("omniglot", "synthetic", "evaluation", {"size": 28})
    assert rec["spec"]["variant"] == "disbench_v1" and rec["spec"]["scorer"] == "critic"
    assert rec["spec"]["out"]["resized_to"] == [1, 28, 28]
    with pytest.raises(DisbenchError, match="scores 1x28x28 images"):
        ood.gwae_ood_protocol(_Gauss(shape=(3, 64, 64)), load_dataset=_loader(sets, []),
                              variant="disbench_v1")


# ----------------------------------------------------------------------------- codes per variant
@pytest.mark.parametrize("variant, sampled_in, sampled_out", [
    ("official", True, True), ("vaetc_main", True, False), ("means", False, False)])
def test_samples_or_means_per_variant(variant, sampled_in, sampled_out):
    sets = _small_sets()
    model = _Gauss()
    rec = ood.gwae_ood_protocol(model, load_dataset=_loader(sets, []), variant=variant,
                                random_state=3, batch_size=1000)
    z_in, z_out = model.seen  # one batch per set
    assert rec["spec"]["in"]["codes"] == ("sampled" if sampled_in else "mean")
    assert rec["spec"]["out"]["codes"] == ("sampled" if sampled_out else "mean")
    mean_in = torch.from_numpy(sets["mnist"].images.reshape(300, -1)[:, :2] / 255.0).float()
    out_imgs = _ordered(rec, sets["omniglot"].images)
    mean_out = torch.from_numpy(out_imgs.reshape(len(out_imgs), -1)[:, :2] / 255.0).float()
    for z, mean, sampled in ((z_in, mean_in, sampled_in), (z_out, mean_out, sampled_out)):
        if sampled:  # one posterior sample each: (z - mean) / sigma ~ N(0, 1), sigma = 0.5
            eps = ((z - mean) / 0.5).flatten()
            assert abs(eps.mean().item()) < 0.15 and abs(eps.std().item() - 1) < 0.1
        else:
            torch.testing.assert_close(z, mean)


def test_scores_reproducible_and_batch_independent():
    sets = _small_sets()

    def scores(batch_size, seed):
        rec = ood.gwae_ood_protocol(_Gauss(), load_dataset=_loader(sets, []),
                                    batch_size=batch_size, random_state=seed)
        return rec["value"]

    assert scores(256, 0) == scores(7, 0)
    assert scores(256, 0) != scores(256, 1)


def test_variant_errors_and_defaults():
    with pytest.raises(DisbenchError, match="unknown GWAE OoD variant 'nope'"):
        ood.gwae_ood_protocol(_Gauss(), load_dataset=_loader(_small_sets(), []), variant="nope")
    assert ood.default_variant("critic") == "official"
    assert ood.default_variant("elbo") == "disbench_v1"
    assert ood.default_variant("elbo", _Gauss(shape=(1, 28, 28))) == "disbench_v1"
    # disbench_v1 is 28x28 only
    assert ood.default_variant("elbo", _Gauss(shape=(3, 64, 64))) == "official"


# ------------------------------------------------------- clu.py's anomaly of the other models
class _Std(torch.nn.Module):
    """A stand-in VAE (no critic, no code energy): q(z|x) = N(first two pixels, 0.5^2)."""

    registry_name = "vae"

    def __init__(self, shape=(1, 8, 8)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.hparams = SimpleNamespace(image_shape=shape)

    def posterior(self, x):
        mean = self.w * x.flatten(1)[:, :2]
        return mean, torch.full_like(mean, 2 * math.log(0.5))

    def encode(self, x):
        return self.posterior(x)[0]

    def elbo(self, x):  # noqa: ARG002 (disbench_v1's scorer; the official protocol must not call it)
        raise AssertionError("the official protocol scores the code, not the ELBO")


def test_other_models_are_scored_by_the_standard_gaussian_of_their_codes(tmp_path):
    sets = _small_sets(n_in=50, n_out=80)
    rec = ood.gwae_ood_protocol(_Std(), load_dataset=_loader(sets, []), scorer="elbo",
                                variant="means", out_dir=tmp_path)
    assert rec["spec"]["scorer"] == "std_gaussian"
    codes = sets["mnist"].images.reshape(50, -1)[:, :2].astype(np.float64) / 255.0
    # clu.py anormaly_stdgaussian: E(z) = 0.5 * sum(z^2 + log 2 pi); the score is -E(z)
    expected = -0.5 * (codes ** 2 + math.log(2 * math.pi)).sum(axis=1)
    with np.load(tmp_path / rec["spec"]["roc_file"]) as z:
        np.testing.assert_allclose(z["scores_in"], expected, rtol=1e-6)
    # a non-28x28 model's default is the official protocol, so it needs no variant
    assert generation.ood_record(_Std(), SimpleNamespace(name="mnist", source="synthetic"),
                                 load_dataset=_loader(sets, []),
                                 num_samples=50)["spec"]["variant"] == "official"


def test_dagmm_is_scored_by_the_energy_of_its_codes(tmp_path):
    from disbench import baselines

    torch.manual_seed(0)
    model = baselines.create("dagmm", image_shape=(3, 64, 64), latent_dim=3,
                             gmm_components=2, gmm_input="code")
    with torch.no_grad():  # a mixture that is not the initial one
        model.gmm_mean.copy_(torch.tensor([[0.5, -0.2, 0.1], [-1.0, 0.3, 0.0]]))
        model.gmm_cov.copy_(torch.diag_embed(torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.7, 0.9]])))
        model.gmm_phi.copy_(torch.tensor([0.3, 0.7]))
    sets = _sets(n_in=20, n_out=100)
    rec = ood.gwae_ood_protocol(model, load_dataset=_loader(sets, []), variant="official",
                                out_dir=tmp_path)
    assert rec["spec"]["scorer"] == "dagmm_code_energy"
    # a deterministic encoder's code is its own sample (vaetc samples Gaussian encoders only)
    assert rec["spec"]["in"]["codes"] == rec["spec"]["out"]["codes"] == "deterministic"
    model.eval()
    with torch.no_grad():
        z = model.encode(torch.from_numpy(_reference_view(
            sets["mnist"].images.astype(np.float64))).float()).double().numpy()
    # -log sum_k phi_k N(z; mu_k, diag(var_k)), written out
    mu, var, phi = (t.double().numpy() for t in (
        model.gmm_mean, torch.diagonal(model.gmm_cov, dim1=-2, dim2=-1), model.gmm_phi))
    log_n = -0.5 * (((z[:, None] - mu) ** 2 / var).sum(-1) + np.log(2 * np.pi * var).sum(-1))
    expected = np.log((phi * np.exp(log_n)).sum(axis=1))  # the negated energy
    with np.load(tmp_path / rec["spec"]["roc_file"]) as f:
        np.testing.assert_allclose(f["scores_in"], expected, rtol=1e-4, atol=1e-5)
    paper = baselines.create("dagmm", image_shape=(3, 64, 64), latent_dim=3, gmm_input="paper")
    with pytest.raises(DisbenchError, match="gmm_input='code'"):
        ood.gwae_ood_protocol(paper, load_dataset=_loader(sets, []), variant="means")


# ----------------------------------------------------------------------------- the record
def test_ood_record_and_metrics_json_record_the_variant(tmp_path, monkeypatch):
    from disbench import datasets
    from disbench.run import evaluate as run_evaluate

    sets = _small_sets()
    dataset = SimpleNamespace(name="mnist", source="synthetic", images=sets["mnist"].images)
    rec = generation.ood_record(_Gauss(), dataset, load_dataset=_loader(sets, []),
                                num_samples=50)
    assert rec["spec"]["variant"] == "official"
    assert rec["spec"]["in"]["num_samples"] == 50 and rec["spec"]["out"]["num_samples"] == 64
    old = generation.ood_record(_Gauss(shape=(1, 28, 28)), SimpleNamespace(
        name="mnist", source="synthetic"), load_dataset=_loader(_sets(30, 40), []),
        num_samples=25, variant="disbench_v1")
    assert old["spec"]["variant"] == "disbench_v1"
    assert old["spec"]["in"]["num_samples"] == 25 and old["spec"]["out"]["num_samples"] == 25

    # the run evaluator writes the record, variant included, into metrics.json (the stand-ins
    # keep the signatures of what they replace)
    monkeypatch.setattr(run_evaluate, "_check_trained", lambda folder: None)  # noqa: ARG005
    # the stand-in folder has no config.json for the dataset/metric check to read
    monkeypatch.setattr(run_evaluate, "_check_metrics",
                        lambda folder, metrics: None)  # noqa: ARG005
    monkeypatch.setattr(run_evaluate, "load_run", lambda path, device="cpu": (  # noqa: ARG005
        _Gauss(), None, {"name": "mnist", "source": "synthetic", "split": "train"}))
    monkeypatch.setattr(run_evaluate, "_provenance", lambda *a: {})
    monkeypatch.setattr(datasets, "get",
                        lambda name, source="auto", split=None, **kw:  # noqa: ARG005
                        dataset if split == "train" else sets[name])
    run_evaluate.evaluate_run(tmp_path, ["ood_auroc"], num_test=40, device="cpu")
    doc = json.loads((tmp_path / "metrics.json").read_text())
    (stored,) = doc["records"]
    assert stored["metric"] == "ood_auroc" and stored["spec"]["variant"] == "official"
    assert stored["spec"]["in"]["codes"] == stored["spec"]["out"]["codes"] == "sampled"
    assert (tmp_path / stored["spec"]["roc_file"]).exists()
