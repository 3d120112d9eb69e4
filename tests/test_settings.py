"""Run and evaluation settings are declared once; validation, hashing, grouping, leaderboard
labels, spec keys and command-line flags all follow the declaration."""
import argparse
import dataclasses
import subprocess
import sys

import pytest
import yaml
from disbench.errors import DisbenchError
from disbench.metrics.evaluators import EvalOptions
from disbench.report import leaderboard
from disbench.run import config as C
from disbench.run import settings as S
from disbench.run.ensemble import group_key
from disbench.sweeps.spec import parse_spec

SPEC = """\
name: s
datasets: [{name: dsprites, source: synthetic}]
models: [{name: vae}]
train: {TRAIN}
seeds: [0]
metrics: [hoyer]
eval: {EVAL}
"""


def _spec(train="{steps: 5}", eval_="{}"):
    return SPEC.replace("{TRAIN}", train).replace("{EVAL}", eval_)


def _base(**kw):
    return C.RunConfig(**{"model": "vae", "dataset": "dsprites", "source": "synthetic",
                          "steps": 5, "device": "cpu", **kw})


def test_spec_train_keys_and_messages_are_the_fields():
    assert set(C.TRAIN_FIELDS) == {f.name for f in dataclasses.fields(C.RunConfig)
                                   if f.metadata["train"]}
    bad = {"steps": 0, "batch_size": -1, "lr": "fast", "log_every": 1.5, "amp": "fp8",
           "compile": "maybe", "device": "tpu", "checkpoint_every": True, "pair_k": 0,
           "num_labelled": 0, "labeller": "sloppy", "eval_every": -1, "eval_metrics": ",",
           "eval_points": 0}
    assert set(bad) == set(C.TRAIN_FIELDS)
    for key, value in bad.items():
        train = yaml.safe_dump({"steps": 5, key: value}, default_flow_style=True).strip()
        with pytest.raises(DisbenchError) as spec_err:
            parse_spec(_spec(train), source="s.yaml")
        with pytest.raises(DisbenchError) as cfg_err:
            _base(**{key: value})
        # One validator: the spec names the key path, the config the field, same problem.
        problem = str(cfg_err.value).removeprefix(f"{key} ")
        assert f"'train.{key}'" in str(spec_err.value)
        assert str(spec_err.value).endswith(problem), (spec_err.value, problem)


def test_hash_group_and_variant_follow_the_metadata():
    base = _base()
    for name in C.NOT_HASHED:
        f = next(f for f in dataclasses.fields(C.RunConfig) if f.name == name)
        assert not f.metadata["hashed"]
    assert base.run_id() == _base(log_every=7, checkpoint_every=3, device="auto").run_id()
    assert base.run_id() != _base(batch_size=32).run_id()
    # Seeds and hyperparameter values may differ within an ensemble; group fields may not.
    assert group_key(base) == group_key(_base(seed=3, hparams={}))
    for name, other in (("steps", 6), ("lr", 1e-3), ("log_every", 7), ("checkpoint_every", 3)):
        assert name in C.GROUP_FIELDS
        assert group_key(base) != group_key(_base(**{name: other})), name
    assert set(leaderboard.TRAIN_VARIANT_KEYS) == set(C.VARIANT_FIELDS)
    assert set(leaderboard.NON_VARIANT_KEYS) | set(C.VARIANT_FIELDS) == set(C.FIELDS)


def test_a_new_setting_is_one_field():
    """A field declared with setting() gets its validator, flag and derived sets at once."""

    @dataclasses.dataclass
    class Extended(C.RunConfig):
        warmup: int = S.setting(10, check=S.positive_int, train=True, variant=True,
                                help="warm-up steps (default: 10)")

    assert "warmup" in S.names_where(Extended, "train")
    assert "warmup" in S.names_where(Extended, "variant")
    assert "warmup" in S.names_where(Extended, "hashed")
    assert S.check_value(Extended, "warmup", 0) == "must be a positive integer, got 0"
    p = argparse.ArgumentParser()
    S.add_flags(p, Extended, ["warmup", "compile"])
    assert p.parse_args([]).warmup == 10 and p.parse_args(["--warmup", "3"]).warmup == 3
    assert p.parse_args(["--compile"]).compile is True
    assert "warm-up steps" in p.format_help()


def test_train_cli_flags_are_the_fields(capsys):
    from disbench import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for name in C.FLAG_FIELDS:
        f = next(f for f in dataclasses.fields(C.RunConfig) if f.name == name)
        flag = "--" + name.replace("_", "-")
        assert flag in out, flag
        assert f.metadata["help"].split()[0] in out


def test_eval_keys_and_flags_are_the_eval_options(capsys):
    from disbench import cli

    spec = parse_spec(_spec(eval_="{num_train: 100, codes: sampled, device: cpu}"))
    assert spec.eval == {"num_train": 100, "codes": "sampled", "device": "cpu"}
    for text, key in (("{num_tst: 1}", "num_tst"), ("{codes: median}", "codes"),
                      ("{random_state: -1}", "random_state"), ("{batch_size: 0}", "batch_size")):
        with pytest.raises(DisbenchError, match=f"'eval.{key}'"):
            parse_spec(_spec(eval_=text))
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for name in EvalOptions.names():
        assert "--" + name.replace("_", "-") in out, name


def test_help_imports_no_torch():
    code = ("import sys; from disbench.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules, 'disbench.metrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
