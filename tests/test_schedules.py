"""Hyperparameter schedules: the formulas at chosen steps (Fu et al. 2019's cyclical
annealing and a delayed linear ramp), their text in specs, the CLI, the config and the hash."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from disbench import baselines, cli
from disbench.baselines.schedules import Schedule, parse
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.sweeps.spec import parse_spec


def _fu_linear(t, period, ratio, start, end):
    """Fu et al. 2019: within a cycle tau = (t mod period) / period; f = tau / R, then 1."""
    tau = (t % period) / period
    return start + (end - start) * min(tau / ratio, 1.0)


@pytest.mark.parametrize("t", [0, 1, 5, 9, 10, 19, 20, 24, 25, 39, 40, 99])
def test_values_at_chosen_steps(t):
    assert parse("linear(0, 4, 10)").value(t) == pytest.approx(4 * min(t / 10, 1))
    lin = parse("linear(1, 3, 10, delay=20)").value(t)
    assert lin == pytest.approx(1 if t < 20 else 1 + 2 * min((t - 20) / 10, 1))
    cyc = parse("cyclic_linear(0, 2, 20, ratio=0.5)").value(t)
    assert cyc == pytest.approx(_fu_linear(t, 20, 0.5, 0, 2), abs=1e-6)
    cos = parse("cyclic_cosine(0, 1, 20)").value(t)
    r = min(((t % 20) / 20) / 0.5, 1.0)
    assert cos == pytest.approx(0.5 - 0.5 * math.cos(math.pi * r), abs=1e-6)
    delayed = parse("cyclic_linear(0, 1, 10, delay=25)").value(t)
    assert delayed == pytest.approx(0.0 if t < 25 else _fu_linear(t - 25, 10, 0.5, 0, 1),
                                    abs=1e-6)


def test_matches_the_authors_frange_cycle_linear():
    """haofuml/cyclical_annealing's frange_cycle_linear(0, 1, n, n_cycle=4, ratio=0.5),
    written out: 4 cycles of n / 4 steps, a linear ramp over half of each, then 1."""
    n = 400
    ref = np.ones(n)
    period = n / 4
    step = 1.0 / (period * 0.5)
    for c in range(4):
        v, i = 0.0, 0
        while v <= 1.0 and int(i + c * period) < n:
            ref[int(i + c * period)] = v
            v += step
            i += 1
    s = parse("cyclic_linear(0, 1, 100, ratio=0.5)")
    got = np.array([s.value(t) for t in range(n)])
    assert np.allclose(got, ref, atol=1e-5)


def test_tensor_steps_give_the_int_values():
    s = parse("cyclic_cosine(0.5, 4, 30, ratio=0.25, delay=7)")
    for t in (0, 6, 7, 8, 20, 44, 1000):
        assert torch.equal(s.at(t), s.at(torch.tensor(float(t))))


def test_text_is_canonical_and_bad_text_is_a_clear_error():
    assert str(parse("linear(0,4,10000)")) == "linear(0, 4, 10000)"
    assert str(parse("linear(0, 4.0, 1e4, delay=0)")) == "linear(0, 4, 10000)"
    assert str(parse("cyclic_linear(0,1,100,0.5,10)")) == "cyclic_linear(0, 1, 100, delay=10)"
    assert parse("linear(0, 4, 10)") == parse("linear(0.0, 4, 10)")
    for bad, why in (("linear(0, 4)", "missing steps"), ("linear(0, 4, 10, rate=2)", "unknown"),
                     ("cubic(0, 1, 2)", "the kinds are"), ("linear(0, 4, 0)", ">= 1"),
                     ("linear(0, 4, 2.5)", "whole number"), ("cyclic_linear(0, 1, 5, ratio=2)",
                                                             "ratio must be"),
                     ("linear(0, x, 3)", "must be a number")):
        with pytest.raises(DisbenchError, match=why):
            parse(bad, "beta")


def test_a_schedule_is_a_recorded_hyperparameter():
    m = baselines.create("beta_vae", beta="linear(0,4,100)")
    assert isinstance(m.hparams.beta, Schedule) and m.step_dependent
    assert m.hparams.to_dict()["beta"] == "linear(0, 4, 100)"
    assert not baselines.create("beta_vae").step_dependent
    with m.hparams_at(50):
        assert float(m.hparams.beta) == 2.0
    assert isinstance(m.hparams.beta, Schedule)  # restored
    a = RunConfig(model="beta_vae", dataset="dsprites", source="synthetic",
                  hparams={"beta": "linear(0,4,100)"})
    b = RunConfig(model="beta_vae", dataset="dsprites", source="synthetic",
                  hparams={"beta": "linear(0, 4, 100)"})
    c = RunConfig(model="beta_vae", dataset="dsprites", source="synthetic",
                  hparams={"beta": "linear(0, 4, 200)"})
    assert a.run_id() == b.run_id() != c.run_id()
    assert a.resolved().hparams["beta"] == "linear(0, 4, 100)"
    # range checks see every value of the schedule; a hparam read at build time is refused
    with pytest.raises(DisbenchError, match="prior_var must be > 0"):
        baselines.create("wae_mmd", prior_var="linear(0, 1, 10)")
    with pytest.raises(DisbenchError, match="beta must be a number"):
        baselines.create("beta_vae", beta="fast")


def test_spec_and_cli_take_schedules(tmp_path):
    spec = parse_spec("""\
datasets: [{name: dsprites, source: synthetic}]
models: [{name: beta_vae, beta: ["linear(0, 4, 10000)", "cyclic_linear(0, 4, 2500)", 4]}]
train: {steps: 5}
metrics: [mig]
""")
    betas = [c.hparams["beta"] for c in spec.run_configs()]
    assert betas == ["linear(0, 4, 10000)", "cyclic_linear(0, 4, 2500)", 4]
    argv = ["train", "beta_vae", "--dataset", "dsprites", "--source", "synthetic", "--steps",
            "2", "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path), "--set",
            "beta=linear(0,4,10000)", "--set", "latent_dim=3", "--no-progress"]
    assert cli.main(argv) == 0
    (run,) = list(Path(tmp_path).glob("dsprites/beta_vae/*"))
    conf = json.loads((run / "config.json").read_text())
    assert conf["hparams"]["beta"] == "linear(0, 4, 10000)"
