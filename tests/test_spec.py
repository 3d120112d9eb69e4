"""Sweep specs: expansion into runs, and malformed specs named by key and line."""
import pytest
from disbench.errors import DisbenchError
from disbench.sweeps.spec import load_spec, parse_spec

GOOD = """\
name: tiny
datasets: [{name: dsprites, source: synthetic}]
models:
  - {name: vae}
  - {name: beta_vae, beta: [2, 4]}
  - {name: ab_vae, prior: sparse, alpha: [0, 100], beta: [1, 2]}
train: {steps: 30, batch_size: 16}
seeds: [0, 1]
metrics: [mig, sap]
eval: {num_train: 300, num_test: 200}
"""


def test_expansion_is_the_product():
    spec = parse_spec(GOOD)
    assert spec.name == "tiny"
    # variants: 1 + 2 + 2*2 = 7; runs: 1 dataset x 7 variants x 2 seeds
    assert len(spec.models) == 7
    runs = spec.run_dicts()
    assert len(runs) == 14
    ab = [r for r in runs if r["model"] == "ab_vae"]
    assert {(r["hparams"]["alpha"], r["hparams"]["beta"], r["seed"]) for r in ab} == {
        (a, b, s) for a in (0, 100) for b in (1, 2) for s in (0, 1)
    }
    assert all(r["hparams"]["prior"] == "sparse" for r in ab)
    assert runs[0] == {
        "model": "vae", "hparams": {}, "dataset": "dsprites", "source": "synthetic",
        "split": None, "seed": 0, "steps": 30, "batch_size": 16,
    }
    assert spec.eval == {"num_train": 300, "num_test": 200}


def test_list_of_one_list_is_a_literal_list_and_train_lists_sweep():
    spec = parse_spec(GOOD.replace("prior: sparse", "prior: anisotropic, prior_variances: [[1, 2, 3]]")
                      .replace("steps: 30", "steps: [30, 60]"))
    ab = [r for r in spec.run_dicts() if r["model"] == "ab_vae"]
    assert all(r["hparams"]["prior_variances"] == [1, 2, 3] for r in ab)
    vae = [r for r in spec.run_dicts() if r["model"] == "vae"]
    assert sorted({r["steps"] for r in vae}) == [30, 60]
    assert len(spec.run_dicts()) == 28


def test_name_defaults_to_file_stem(tmp_path):
    p = tmp_path / "mysweep.yaml"
    p.write_text(GOOD.replace("name: tiny\n", ""))
    assert load_spec(p).name == "mysweep"


def _err(text):
    with pytest.raises(DisbenchError) as info:
        parse_spec(text, source="s.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("seeds: [0, 1]", "seeds: [0, 1]\nseedz: 3", ["'seedz'", "line 9", "unknown key"]),
        ("train: {steps: 30, batch_size: 16}", "train: {batch_size: 16}",
         ["'train.steps'", "line 7", "missing"]),
        ("steps: 30", "steps: -5", ["'train.steps'", "positive"]),
        ("steps: 30", "steps: many", ["'train.steps'", "int"]),
        ("batch_size: 16", "batch_size: 16, lr: fast", ["'train.lr'"]),
        ("batch_size: 16}", "batch_size: 16, optimiser: sgd}", ["'train.optimiser'", "unknown"]),
        ("seeds: [0, 1]", "seeds: [0, -1]", ["'seeds[1]'", "line 8"]),
        ("seeds: [0, 1]", "seeds: [0, 0]", ["'seeds'", "distinct"]),
        ("  - {name: vae}", "  - {name: vea}", ["'models[0].name'", "line 4", "unknown model"]),
        ("  - {name: vae}", "  - {beta: 2}", ["'models[0].name'", "missing"]),
        ("beta: [2, 4]", "beta: []", ["'models[1].beta'", "line 5"]),
        ("beta: [2, 4]", "beta: {a: 1}", ["'models[1].beta'"]),
        ("beta: [2, 4]", "betta: [2, 4]", ["'models[1].betta'", "line 5", "hyperparameter"]),
        ("source: synthetic", "source: offical", ["'datasets[0].source'", "line 2"]),
        ("{name: dsprites, source: synthetic}", "{name: dsprties}",
         ["'datasets[0].name'", "dsprites"]),
        ("metrics: [mig, sap]", "metrics: []", ["'metrics'", "non-empty"]),
        ("num_test: 200", "num_test: 0", ["'eval.num_test'"]),
        ("num_test: 200", "num_tst: 200", ["'eval.num_tst'", "unknown"]),
    ],
)
def test_malformed_spec_names_key_and_line(old, new, expect):
    assert old in GOOD
    msg = _err(GOOD.replace(old, new))
    assert msg.startswith("s.yaml")
    for e in expect:
        assert e in msg, (e, msg)


def test_missing_required_top_key():
    msg = _err(GOOD.replace("metrics: [mig, sap]\n", ""))
    assert "'metrics'" in msg and "missing" in msg


def test_invalid_yaml_names_line():
    msg = _err(GOOD.replace("seeds: [0, 1]", "seeds: [0, 1"))
    assert "not valid YAML" in msg and "line" in msg


def test_not_a_mapping():
    assert "mapping" in _err("- a\n- b\n")


def test_missing_file(tmp_path):
    with pytest.raises(DisbenchError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_suites_parse():
    from pathlib import Path

    import disbench

    suites = Path(disbench.__file__).parent / "sweeps" / "suites"
    files = sorted(suites.glob("*.yaml"))
    assert {f.stem for f in files} >= {"ci", "default", "paper", "quality"}, files
    for f in files:
        spec = load_spec(f)
        assert spec.run_dicts()


def test_bad_hyperparameter_value_names_the_entry():
    spec = parse_spec(GOOD.replace("alpha: [0, 100]", "alpha: [0, -1]"), source="s.yaml")
    with pytest.raises(DisbenchError) as info:
        spec.run_configs()
    msg = str(info.value)
    assert "s.yaml" in msg and "'models[2]'" in msg and "line 6" in msg and "alpha" in msg


def test_per_model_train_overrides():
    spec = parse_spec(GOOD.replace("{name: vae}", "{name: vae, train: {lr: 0.0001, steps: 60}}"))
    runs = spec.run_dicts()
    vae = [r for r in runs if r["model"] == "vae"]
    assert all(r["lr"] == 0.0001 and r["steps"] == 60 and "train" not in r["hparams"]
               for r in vae)
    assert all(r["steps"] == 30 and "lr" not in r for r in runs if r["model"] != "vae")
    msg = _err(GOOD.replace("{name: vae}", "{name: vae, train: {lr: [0.1, 0.2]}}"))
    assert "'models[0].train.lr'" in msg and "not swept" in msg
    msg = _err(GOOD.replace("{name: vae}", "{name: vae, train: {stepz: 3}}"))
    assert "'models[0].train.stepz'" in msg and "unknown key" in msg


# -- issue 21 item 9: numbers, duplicate keys, alias bombs, huge products ------------------
def test_exponent_numbers_are_floats():
    spec = parse_spec(GOOD.replace("beta: [2, 4]", "beta: [1e-3, 4]")
                      .replace("batch_size: 16}", "batch_size: 16, lr: 1e-4}"))
    assert [m["hparams"]["beta"] for m in spec.models if m["name"] == "beta_vae"] == [1e-3, 4]
    assert spec.train[0]["lr"] == 1e-4 and isinstance(spec.train[0]["lr"], float)
    assert spec.seeds == [0, 1]  # integers stay integers


def test_set_flag_reads_exponent_floats():
    from disbench.cli.train import _parse_set

    got = _parse_set(["beta=1e-3", "gamma=2E+2", "latent_dim=4", "prior=sparse"])
    assert got == {"beta": 1e-3, "gamma": 200.0, "latent_dim": 4, "prior": "sparse"}
    assert isinstance(got["beta"], float) and isinstance(got["latent_dim"], int)


def test_duplicate_keys_name_both_lines():
    msg = _err(GOOD.replace("seeds: [0, 1]", "seeds: [0, 1]\nseeds: [2]"))
    assert "'seeds'" in msg and "lines 8 and 9" in msg, msg
    msg = _err(GOOD.replace("  - {name: vae}", "  - name: vae\n    latent_dim: 4\n"
                                               "    latent_dim: 8"))
    assert "'models[0].latent_dim'" in msg and "lines 5 and 6" in msg, msg


def test_merge_keys_are_not_duplicates():
    text = GOOD.replace("train: {steps: 30, batch_size: 16}",
                        "base: &b {steps: 30, batch_size: 16}\ntrain: {<<: *b, steps: 60}")
    with pytest.raises(DisbenchError, match="'base'"):  # an unknown top key, not a duplicate
        parse_spec(text, source="s.yaml")


BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
name: bomb
datasets: [dsprites]
models: [{name: ab_vae, prior_variances: [*i]}]
train: {steps: 1}
metrics: [mig]
"""

RUN_BOMB = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from disbench.errors import DisbenchError
from disbench.sweeps.spec import parse_spec
try:
    parse_spec(sys.stdin.read(), source="bomb.yaml").run_configs()
except DisbenchError as exc:
    print("error:", exc)
"""


def test_alias_bomb_neither_hangs_nor_exhausts_memory():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", RUN_BOMB], input=BOMB, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("error: bomb.yaml") and "alias" in res.stdout, res.stdout


def test_millions_of_runs_are_refused_before_expanding():
    many = "[" + ", ".join(str(i) for i in range(1000)) + "]"
    text = GOOD.replace("alpha: [0, 100]", f"alpha: {many}").replace("seeds: [0, 1]",
                                                                     f"seeds: {many}")
    msg = _err(text)  # 1000 x (1 + 2 + 2000) = 2,003,000 runs
    assert "2003000 runs" in msg and "max_runs" in msg, msg
    # Raising the limit on purpose is allowed; the product is then counted, not listed.
    msg = _err(GOOD.replace("seeds: [0, 1]", "seeds: [0, 1]\nmax_runs: 10"))
    assert "14 runs" in msg and "max_runs 10" in msg, msg
    assert len(parse_spec(GOOD + "max_runs: 14\n").run_dicts()) == 14
    msg = _err(GOOD + "max_runs: 0\n")
    assert "'max_runs'" in msg and "positive" in msg, msg


# -- issue 21 item 7: dataset x metric pairs that cannot work ---------------------------------
PAIR = """\
datasets: [{dataset}]
models: [{{name: {model}}}]
train: {{steps: 2}}
metrics: [{metrics}]
"""


def _pair(dataset, metrics, model="vae"):
    return PAIR.format(dataset=dataset, metrics=metrics, model=model)


@pytest.mark.parametrize(("dataset", "metrics", "bad", "needs"), [
    ("mnist", "psnr, mig", "mig", "ground-truth dataset"),
    ("celeba", "hoyer", "hoyer", "ground-truth dataset"),
    ("dsprites", "mig, fd_classifier", "fd_classifier", "labelled dataset"),
    ("dsprites", "judge", "judge", "Sprites sequences"),
    ("shapes3d", "ood_auroc", "ood_auroc", "out-of-distribution partner"),
    ("omniglot", "ood_auroc", "ood_auroc", "out-of-distribution partner"),
])
def test_impossible_dataset_metric_pairs_are_refused_before_training(dataset, metrics, bad,
                                                                      needs):
    msg = _err(_pair(dataset, metrics))
    i = [m.strip() for m in metrics.split(",")].index(bad)
    assert f"key 'metrics[{i}]' (line 4)" in msg and f"'{bad}'" in msg, msg
    assert f"'{dataset}'" in msg and needs in msg, msg


@pytest.mark.parametrize(("dataset", "metrics"), [
    ("dsprites", "mig, dci, sap, modularity, hoyer, unsupervised, beta_vae, factor_vae, psnr"),
    ("mnist", "psnr, fid_recon, fd_classifier, ood_auroc"),
    ("fashion_mnist", "ood_auroc"),
    ("sprites", "judge, psnr"),
])
def test_possible_dataset_metric_pairs_pass(dataset, metrics):
    assert parse_spec(_pair(dataset, metrics)).metrics


def test_every_dataset_kind_says_what_it_offers():
    from disbench.datasets.contract import KINDS
    from disbench.metrics.registry import NEEDS
    from disbench.sweeps.spec import DATASET_NEEDS, KIND_OFFERS

    assert set(KIND_OFFERS) == set(KINDS)
    assert set(DATASET_NEEDS) <= set(NEEDS)
    assert all(offers <= set(DATASET_NEEDS) for offers in KIND_OFFERS.values())
