"""GraphedStep: the fixed-buffer ensemble step equals Ensemble.step with shared draws."""
import copy

import pytest
import torch
from disbench import baselines
from disbench.errors import DisbenchError
from disbench.run.ensemble import Ensemble
from disbench.run.graph_step import GraphedStep

K, B, N, STEPS = 3, 4, 20, 3


def _models(device="cpu", model="beta_tcvae"):
    out = []
    for s in range(K):
        torch.manual_seed(s)
        out.append(baselines.create(model, image_shape=(1, 28, 28), latent_dim=4,
                                    beta=float(1 + s)).to(device))
    return out


def _data(device="cpu"):
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (N, 1, 28, 28), generator=g, dtype=torch.uint8).to(device)


def _ensemble(models):
    gens = [torch.Generator(device=models[0].device).manual_seed(100 + i) for i in range(K)]
    return Ensemble(models, 1e-3, gens, vary=["beta"])


@pytest.mark.parametrize("model", ["beta_vae", "beta_tcvae"])
def test_fixed_buffers_equal_updates_on_shared_draws(model):
    """One shared generator each for batches and noise: the buffered step is exactly
    Ensemble.update on the same draws made here, call by call."""
    models = _models(model=model)
    data = _data()
    a = _ensemble(copy.deepcopy(models))
    step = GraphedStep(a, data, B, torch.Generator().manual_seed(1),
                       torch.Generator().manual_seed(2), graph=False)
    b = _ensemble(copy.deepcopy(models))
    batch_gen, noise_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    for i in range(STEPS):
        got = {k: v.clone() for k, v in step().items()}
        idx = torch.randint(N, (K, B), generator=batch_gen).sort(dim=1).values  # as on CPU
        xs = data[idx].float().div(255.0)
        draws = [(torch.randn if f in (torch.randn, torch.randn_like) else torch.rand)(
            shape, generator=noise_gen, dtype=dt) for f, shape, dt in b.draw_shapes(xs[0], i)]
        want = b.update(xs, draws, i)
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), k
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name
    # The members trained on different batches: their losses differ.
    assert len(set(got["loss"].tolist())) == K


def test_members_see_their_own_batches():
    step = GraphedStep(_ensemble(_models("cpu", "beta_vae")), _data(), B,
                       torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                       graph=False)
    step()
    assert step.idx.shape == (K, B)
    assert len({tuple(r) for r in step.idx.tolist()}) == K
    assert torch.equal(step.images, _data()[step.idx])


def test_bad_input_is_refused():
    ens = _ensemble(_models("cpu", "beta_vae"))
    gens = (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    with pytest.raises(DisbenchError, match="CUDA graphs need a CUDA device"):
        GraphedStep(ens, _data(), B, *gens, graph=True)
    with pytest.raises(DisbenchError, match="uint8"):
        GraphedStep(ens, _data().float(), B, *gens, graph=False)
    with pytest.raises(DisbenchError, match="shape"):
        GraphedStep(ens, _data()[:, 0], B, *gens, graph=False)
    with pytest.raises(DisbenchError, match="batch_size"):
        GraphedStep(ens, _data(), 0, *gens, graph=False)
    with pytest.raises(DisbenchError, match="data is on meta"):
        GraphedStep(ens, _data().to("meta"), B, *gens, graph=False)


def test_step_dependent_loss_reads_a_device_counter(monkeypatch):
    """A step-dependent loss is no longer refused for graphing: it reads a float32 step
    counter on the device (refilled before every call) instead of a Python int that a
    graph would freeze at capture (tests/test_annealed_vae.py checks the values)."""
    models = _models("cpu", "beta_vae")
    gens = lambda: (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    plain = GraphedStep(_ensemble(copy.deepcopy(models)), _data(), B, *gens(), graph=False)
    assert plain.step_counter is None
    monkeypatch.setattr(type(models[0]), "loss_depends_on_step", True)
    counted = GraphedStep(_ensemble(copy.deepcopy(models)), _data(), B, *gens(), graph=False)
    assert counted.step_counter is not None and counted.step_counter.dtype == torch.float32
    for i in range(STEPS):
        a, b = plain(), counted()
        assert float(counted.step_counter) == i
        for k in a:  # beta_vae ignores the step: the counter changes nothing
            assert torch.equal(a[k], b[k]), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_replay_matches_eager_on_cuda():
    """Captured and eager steps on the same draws agree to float tolerance."""
    dev = torch.device("cuda")
    models = _models(dev, "beta_vae")
    data = _data(dev)
    runs = []
    for graph in (False, True):
        ens = _ensemble(copy.deepcopy(models))
        step = GraphedStep(ens, data, B, torch.Generator(device=dev).manual_seed(1),
                           torch.Generator(device=dev).manual_seed(2), graph=graph, warmup=2)
        losses = [step()["loss"].clone() for _ in range(6)]  # 2 warm-up, capture, 3 replays
        runs.append((torch.stack(losses), {n: p.detach().clone() for n, p in ens.params.items()}))
    (l0, p0), (l1, p1) = runs
    torch.testing.assert_close(l1, l0, rtol=1e-4, atol=1e-4)
    for n in p0:
        torch.testing.assert_close(p1[n], p0[n], rtol=1e-4, atol=1e-5)


def test_per_member_generators_equal_exact_ensemble_steps():
    """One generator per member: the buffered step is Ensemble.step with per-member draws
    on the batches BatchSampler would draw (sorted within a batch on CPU)."""
    models = _models(model="beta_vae")
    data = _data()
    a = _ensemble(copy.deepcopy(models))
    step = GraphedStep(a, data, B, [torch.Generator().manual_seed(s) for s in range(K)],
                       [torch.Generator().manual_seed(100 + s) for s in range(K)], graph=False)
    b = _ensemble(copy.deepcopy(models))  # its noise generators are seeded 100 + k
    batch_gens = [torch.Generator().manual_seed(s) for s in range(K)]
    for i in range(STEPS):
        got = {k: v.clone() for k, v in step().items()}
        idx = torch.stack([torch.randint(N, (B,), generator=g).sort().values
                           for g in batch_gens])
        want = b.step(data[idx].float().div(255.0), i)
        for k in want:
            assert torch.equal(got[k], want[k]), k
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name


def test_generator_count_is_checked():
    ens = _ensemble(_models("cpu", "beta_vae"))
    with pytest.raises(DisbenchError, match="one per member"):
        GraphedStep(ens, _data(), B, [torch.Generator()] * (K - 1), torch.Generator(),
                    graph=False)
