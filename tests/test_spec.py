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
    from disbench.run.needs import DATASET_NEEDS, KIND_OFFERS

    assert set(KIND_OFFERS) == set(KINDS)
    assert set(DATASET_NEEDS) <= set(NEEDS)
    assert all(offers <= set(DATASET_NEEDS) for offers in KIND_OFFERS.values())


# --------------------------------------------------------------------------- sizes
SIZED = GOOD.replace("name: tiny\n", "name: tiny\n").replace(
    "datasets: [{name: dsprites, source: synthetic}]",
    "datasets: [{name: dsprites, source: official}]"
).replace("train: {steps: 30, batch_size: 16}",
          "train: {steps: 3000, batch_size: 16, lr: 0.001, device: cuda}") + """\
sizes:
  cpu:
    datasets: [{name: dsprites, source: synthetic}]
    train: {steps: 30, device: cpu}
    seeds: [0]
    eval: {num_train: 100}
  half:
    models: [{name: vae}]
"""


def test_sizes_override_the_top_level_and_the_full_protocol_is_the_top_level():
    full = parse_spec(SIZED, source="s.yaml")
    assert full.name == "tiny" and full.size is None and full.sizes == ("cpu", "half")
    assert full.train == [{"steps": 3000, "batch_size": 16, "lr": 0.001, "device": "cuda"}]
    assert full.datasets[0]["source"] == "official" and full.seeds == [0, 1]
    cpu = parse_spec(SIZED, source="s.yaml", size="cpu")
    assert cpu.name == "tiny-cpu" and cpu.size == "cpu" and cpu.sizes == ("cpu", "half")
    # train and eval merge key by key; the other keys replace the top level's
    assert cpu.train == [{"steps": 30, "batch_size": 16, "lr": 0.001, "device": "cpu"}]
    assert cpu.eval == {"num_train": 100, "num_test": 200}
    assert cpu.datasets[0]["source"] == "synthetic" and cpu.seeds == [0]
    assert len(cpu.models) == len(full.models) == 7  # not repeated: the top level's
    assert len(cpu.run_dicts()) == 7 and len(full.run_dicts()) == 14
    half = parse_spec(SIZED, source="s.yaml", size="half")
    assert [m["name"] for m in half.models] == ["vae"] and half.train == full.train


def test_load_spec_selects_a_size(tmp_path):
    p = tmp_path / "suite.yaml"
    p.write_text(SIZED)
    assert load_spec(p, size="cpu").train[0]["steps"] == 30
    assert load_spec(p).train[0]["steps"] == 3000
    with pytest.raises(DisbenchError, match="no size 'gpu'; its sizes are cpu, half"):
        load_spec(p, size="gpu")
    with pytest.raises(DisbenchError, match="it has no 'sizes:'"):
        parse_spec(GOOD, source="g.yaml", size="cpu")


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("    train: {steps: 30, device: cpu}", "    train: {steps: -3, device: cpu}",
         ["'sizes.cpu.train.steps'", "line 14", "positive"]),
        ("    seeds: [0]", "    seedz: [0]", ["'sizes.cpu.seedz'", "line 15", "may override"]),
        ("    seeds: [0]", "    seeds: [0, 0]", ["'sizes.cpu.seeds'", "line 15", "distinct"]),
        ("    seeds: [0]", "    seeds: 1.5", ["'sizes.cpu.seeds'", "non-empty list"]),
        ("    eval: {num_train: 100}", "    eval: {num_train: 0}",
         ["'sizes.cpu.eval.num_train'", "line 16"]),
        ("    eval: {num_train: 100}", "    eval: 7", ["'sizes.cpu.eval'", "mapping"]),
        ("    models: [{name: vae}]", "    models: [{name: vea}]",
         ["'sizes.half.models[0].name'", "line 18", "unknown model"]),
        ("  half:\n    models: [{name: vae}]\n", "  half: {}\n", ["'sizes.half'", "non-empty"]),
        ("  cpu:\n", "  c p u:\n", ["'sizes.c p u'", "line 12", "a word"]),
        ("datasets: [{name: dsprites, source: synthetic}]", "datasets: [{name: dsprites, source: x}]",
         ["'sizes.cpu.datasets[0].source'", "line 13"]),
    ],
)
def test_malformed_sizes_name_key_and_line(old, new, expect):
    assert old in SIZED
    msg = _err(SIZED.replace(old, new))
    assert msg.startswith("s.yaml"), msg
    for e in expect:
        assert e in msg, (e, msg)


def test_sizes_must_be_a_mapping():
    msg = _err(SIZED.split("sizes:")[0] + "sizes: [cpu]\n")
    assert "'sizes' (line 11)" in msg and "mapping" in msg


def test_a_malformed_size_fails_whichever_size_is_loaded():
    bad = SIZED.replace("    train: {steps: 30, device: cpu}", "    train: {stepz: 3}")
    for size in (None, "half"):
        with pytest.raises(DisbenchError, match="sizes.cpu.train.stepz"):
            parse_spec(bad, source="s.yaml", size=size)


# --------------------------------------------------------------------------- paper suites
PAPER_SUITES = ("rwae_sprites", "abvae_sparsity", "abvae_disentanglement", "abvae_clustering",
                "gwae_shapes3d", "gwae_ood", "gwae_celeba")


def _suite_dir():
    from pathlib import Path

    import disbench

    return Path(disbench.__file__).parent / "sweeps" / "suites"


@pytest.mark.parametrize("suite", PAPER_SUITES)
def test_paper_suites_parse_in_every_size_and_name_only_registered_things(suite):
    from disbench import baselines, datasets
    from disbench.metrics import EVALUATORS, HIGHER_IS_BETTER

    path = _suite_dir() / f"{suite}.yaml"
    full = load_spec(path)
    assert full.claims and "cpu" in full.sizes, suite
    for size in (None, *full.sizes):
        spec = load_spec(path, size=size)
        assert spec.run_dicts()
        assert {m["name"] for m in spec.models} <= set(baselines.names())
        assert {d["name"] for d in spec.datasets} <= set(datasets.names())
        assert set(spec.metrics) <= set(EVALUATORS)
        for claim in spec.claims:
            assert claim.metric in HIGHER_IS_BETTER
            for sel in (claim.better, claim.than):
                assert any(m["name"] == sel["model"] for m in spec.models), (suite, size, sel)
    cpu = load_spec(path, size="cpu")
    # the CPU size trains on the CPU, on twins (or data with no official files)
    assert all(t.get("device") == "cpu" for t in cpu.train), suite
    assert all(d["source"] == "synthetic" for d in cpu.datasets), suite


def test_every_paper_suite_is_in_make_bench_claims():
    from pathlib import Path

    import disbench

    makefile = Path(disbench.__file__).resolve().parent.parent / "Makefile"
    if not makefile.is_file():
        pytest.skip("not a source checkout")
    line = next(ln for ln in makefile.read_text().splitlines()
                if ln.startswith("CLAIM_SUITES"))
    assert set(line.split(":=")[1].split()) == set(PAPER_SUITES)
    suites_with_claims = {p.stem for p in _suite_dir().glob("*.yaml") if load_spec(p).claims}
    # the default suite's claims are checked by `make bench` itself
    assert suites_with_claims == set(PAPER_SUITES) | {"default"}
    bench = makefile.read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "claims default" in bench


def test_a_bad_value_in_a_sizes_model_names_the_sizes_entry():
    spec = parse_spec(SIZED.replace("    models: [{name: vae}]",
                                    "    models: [{name: vae, latent_dim: 0}]"),
                      source="s.yaml", size="half")
    with pytest.raises(DisbenchError) as info:
        spec.run_configs()
    msg = str(info.value)
    assert "s.yaml: key 'sizes.half.models[0]' (line 18)" in msg and "latent_dim" in msg, msg
