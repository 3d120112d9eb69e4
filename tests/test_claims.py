"""Claims: parsing and verdicts on hand-made runs (disbench.sweeps.claims)."""
import math

import numpy as np
import pytest
from disbench.sweeps import claims as C
from scipy import stats


def runs(model, values, metric="mig", dataset="dsprites", **settings):
    return [C.RunScores(dataset, model, dict(settings), {metric: v}, seed=i)
            for i, v in enumerate(values)]


def claim(**kw):
    base = {"id": "c", "source": "paper, Table 1", "statement": "a beats b", "metric": "mig",
                "better": {"model": "a"}, "than": {"model": "b"}}
    base.update(kw)
    return C.Claim(**base)


HIB = {"mig": True, "tc": False, "psnr": True}


def test_holds_with_a_significant_welch_test():
    rs = runs("a", [0.30, 0.32, 0.31, 0.33]) + runs("b", [0.10, 0.12, 0.11])
    res = C.verdict(claim(), rs, HIB)
    assert res.verdict == C.HOLDS
    assert res.direction == "better"
    assert res.better.n == 4 and res.than.n == 3
    assert res.better.mean == pytest.approx(0.315)
    assert res.than.std == pytest.approx(np.std([0.10, 0.12, 0.11], ddof=1))
    assert res.p_value < 0.05


def test_welch_p_value_equals_the_textbook_formula():
    a, b = [0.5, 0.7, 0.6, 0.9], [0.4, 0.45, 0.7]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    expected = stats.t.sf(t, df)  # one-sided: P(T > t)
    assert C.welch_p_value(a, b, True) == pytest.approx(expected, rel=1e-10)
    # lower is better: the same test on the other tail
    assert C.welch_p_value(b, a, False) == pytest.approx(expected, rel=1e-10)


def test_direction_only_when_not_significant_or_too_few_seeds():
    noisy = runs("a", [0.3, 0.1, 0.25]) + runs("b", [0.2, 0.15, 0.18])
    res = C.verdict(claim(), noisy, HIB)
    assert res.verdict == C.DIRECTION_ONLY and res.p_value >= 0.05
    two = runs("a", [0.3, 0.31]) + runs("b", [0.1, 0.11])
    res = C.verdict(claim(), two, HIB)
    assert res.verdict == C.DIRECTION_ONLY and math.isnan(res.p_value)
    assert "fewer than 3 seeds" in res.note


def test_does_not_hold_when_worse_or_tied():
    worse = runs("a", [0.1, 0.11, 0.12]) + runs("b", [0.3, 0.31, 0.32])
    assert C.verdict(claim(), worse, HIB).verdict == C.DOES_NOT_HOLD
    tie = runs("a", [0.2, 0.2, 0.2]) + runs("b", [0.2, 0.2, 0.2])
    res = C.verdict(claim(), tie, HIB)
    assert res.verdict == C.DOES_NOT_HOLD and res.direction == "tie"


def test_lower_is_better_metric_flips_the_direction():
    rs = runs("a", [1.0, 1.1, 0.9], metric="tc") + runs("b", [3.0, 3.2, 2.9], metric="tc")
    res = C.verdict(claim(metric="tc"), rs, HIB)
    assert res.verdict == C.HOLDS and res.direction == "better"


def test_missing_variant_or_metric_is_not_run():
    rs = runs("a", [0.3, 0.31, 0.32])
    res = C.verdict(claim(), rs, HIB)
    assert res.verdict == C.NOT_RUN and "b" in res.note
    other_metric = runs("a", [0.3], metric="sap") + runs("b", [0.1], metric="sap")
    assert C.verdict(claim(), other_metric, HIB).verdict == C.NOT_RUN


def test_selectors_match_settings_and_dataset():
    rs = (runs("ab_vae", [0.5, 0.52, 0.51], prior="sparse", alpha=100.0)
          + runs("ab_vae", [0.2, 0.21, 0.22], prior="gaussian", alpha=100.0)
          + runs("ab_vae", [0.9, 0.9, 0.9], prior="gaussian", dataset="shapes3d"))
    c = claim(better={"model": "ab_vae", "prior": "sparse", "alpha": 100},
              than={"model": "ab_vae", "prior": "gaussian"}, dataset="dsprites")
    res = C.verdict(c, rs, HIB)
    assert res.better.n == 3 and res.than.n == 3  # shapes3d runs left out
    assert res.verdict == C.HOLDS
    assert not C.matches({"model": "ab_vae", "prior": "mixture"}, rs[0])


def test_within_margin_claims():
    rs = runs("a", [20.0, 20.5], metric="psnr") + runs("b", [20.4, 20.9], metric="psnr")
    assert C.verdict(claim(metric="psnr", within=1.0), rs, HIB).verdict == C.HOLDS
    assert C.verdict(claim(metric="psnr", within=0.1), rs, HIB).verdict == C.DOES_NOT_HOLD


def test_unmatched_reconstruction_caps_the_verdict():
    rs = (runs("a", [0.3, 0.32, 0.31]) + runs("b", [0.1, 0.12, 0.11]))
    for r, p in zip(rs, [20, 20, 20, 25, 25, 25], strict=True):
        r.scores["psnr"] = float(p)
    c = claim(matched={"metric": "psnr", "tolerance": 1.0})
    res = C.verdict(c, rs, HIB)
    assert res.verdict == C.DIRECTION_ONLY and "not matched" in res.note
    res = C.verdict(claim(matched={"metric": "psnr", "tolerance": 6.0}), rs, HIB)
    assert res.verdict == C.HOLDS


def _fail(path, msg):
    raise ValueError(f"{path}: {msg}")


GOOD = {"id": "x", "source": "s", "statement": "t", "metric": "mig",
        "better": {"model": "a"}, "than": {"model": "b"}}


@pytest.mark.parametrize("bad, where, what", [
    ({**GOOD, "metrc": "mig"}, "metrc", "unknown key"),
    ({k: v for k, v in GOOD.items() if k != "than"}, "than", "missing required key"),
    ({**GOOD, "better": "a"}, "better", "must be a mapping"),
    ({**GOOD, "better": {"model": "a", "beta": [1, 2]}}, "beta", "scalar"),
    ({**GOOD, "than": {"model": "a"}}, "than", "itself"),
    ({**GOOD, "alpha": 1.5}, "alpha", "(0, 1)"),
    ({**GOOD, "within": -1}, "within", "non-negative"),
    ({**GOOD, "matched": {"metric": "psnr"}}, "tolerance", "non-negative"),
    ({**GOOD, "statement": ""}, "statement", "non-empty"),
])
def test_parser_rejects_malformed_claims(bad, where, what):
    with pytest.raises(ValueError) as info:
        C.parse_claims([GOOD | {"id": "ok"}, bad], _fail)
    assert "(1," in str(info.value) and where in str(info.value) and what in str(info.value)


def test_parser_rejects_duplicate_ids_and_empty_lists():
    with pytest.raises(ValueError, match="duplicate claim id"):
        C.parse_claims([GOOD, GOOD], _fail)
    with pytest.raises(ValueError, match="non-empty list"):
        C.parse_claims([], _fail)
    parsed = C.parse_claims([GOOD], _fail)
    assert parsed[0].better == {"model": "a"} and parsed[0].alpha == 0.05


# --------------------------------------------------------------------------- in a suite
SUITE = """\
name: tiny_claims
datasets: [{name: dsprites, source: synthetic}]
models:
  - {name: vae}
  - {name: beta_vae, beta: [2, 4]}
train: {steps: 3, batch_size: 8, lr: 0.001, log_every: 1, device: cpu}
seeds: [0, 1]
metrics: [hoyer, mig]
eval: {num_train: 60, num_test: 30}
claims:
  - id: b4_sparser
    source: "test"
    statement: "beta 4 codes are sparser than the VAE's"
    metric: hoyer
    better: {model: beta_vae, beta: 4}
    than: {model: vae}
"""


def test_suite_claims_parse_and_name_suite_line_and_key():
    from disbench.errors import DisbenchError
    from disbench.sweeps.spec import parse_spec

    spec = parse_spec(SUITE, source="tiny.yaml")
    assert [c.id for c in spec.claims] == ["b4_sparser"]
    bad = {
        "metric: hoyer": ("metric: sap", "claims[0].metric' (line 14)", "not a score of"),
        "beta: 4}": ("beta: 8}", "claims[0].better.beta' (line 15)", "no beta_vae variant"),
        "than: {model: vae}": ("than: {model: wae_mmd}", "claims[0].than.model", "not in this"),
        "    source": ("    sourc", "claims[0].sourc' (line 12)", "unknown key"),
    }
    for old, (new, where, what) in bad.items():
        with pytest.raises(DisbenchError) as info:
            parse_spec(SUITE.replace(old, new, 1), source="tiny.yaml")
        msg = str(info.value)
        assert msg.startswith("tiny.yaml: key '") and where in msg and what in msg, msg


def test_claims_command_on_a_swept_suite(tmp_path, capsys):
    from disbench.cli import main

    path = tmp_path / "tiny.yaml"
    path.write_text(SUITE)
    runs = tmp_path / "runs"
    assert main(["sweep", str(path), "--out", str(runs), "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "tables"
    assert main(["claims", str(path), "--runs", str(runs), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "b4_sparser" in out and "(n=2)" in out
    # The verdict printed is the one computed from the runs' own metrics.json.
    rs = C.collect((runs / "dsprites").rglob("*-s[01]"))
    res = C.verdict(C.parse_claims([{"id": "b4_sparser", "source": "test", "statement": "s",
                                     "metric": "hoyer", "better": {"model": "beta_vae",
                                                                   "beta": 4},
                                     "than": {"model": "vae"}}], _fail)[0], rs, HIB)
    assert res.better.n == 2 and res.than.n == 2
    assert res.verdict in out
    table = (out_dir / "claims.csv").read_text()
    assert "b4_sparser" in table and res.verdict in table
    assert (out_dir / "claims.md").is_file() and "\\toprule" in (out_dir / "claims.tex").read_text()


# --------------------------------------------------------------------------- sizes
SIZED_SUITE = (SUITE.replace("train: {steps: 3, batch_size: 8, lr: 0.001, log_every: 1, device: cpu}",
                            "train: {steps: 3000, batch_size: 8, lr: 0.001, log_every: 1, "
                            "device: cuda}") + """\
  - id: b4_reconstructs
    source: "test"
    statement: "beta 4 reconstructs within 100 dB of the VAE"
    metric: psnr
    within: 100.0
    better: {model: beta_vae, beta: 4}
    than: {model: vae}
sizes:
  cpu:
    train: {steps: 3, device: cpu}
    metrics: [hoyer, mig]
""").replace("metrics: [hoyer, mig]\neval", "metrics: [hoyer, mig, psnr]\neval", 1)


def test_claims_are_checked_in_every_size_naming_suite_line_and_key():
    from disbench.errors import DisbenchError
    from disbench.sweeps.spec import parse_spec

    full = parse_spec(SIZED_SUITE, source="tiny.yaml")
    cpu = parse_spec(SIZED_SUITE, source="tiny.yaml", size="cpu")
    assert [c.id for c in cpu.claims] == [c.id for c in full.claims] == ["b4_sparser",
                                                                         "b4_reconstructs"]
    # a size may leave out a claim's metric (the claim is then "not run" there) ...
    assert "psnr" not in cpu.metrics
    # ... but its claims must still name variants it has, reported under the size's key
    bad = SIZED_SUITE + "    models: [{name: vae}, {name: beta_vae, beta: 2}]\n"
    with pytest.raises(DisbenchError) as info:
        parse_spec(bad, source="tiny.yaml", size="cpu")
    msg = str(info.value)
    assert msg.startswith("tiny.yaml: key 'claims[0].better.beta' (line 15)") and \
        "no beta_vae variant" in msg, msg
    # and the full protocol keeps checking the metric itself
    with pytest.raises(DisbenchError, match=r"claims\[1\].metric' \(line 20\).*not a score"):
        parse_spec(SIZED_SUITE.replace("metric: psnr", "metric: fid"), source="tiny.yaml")


def test_claims_command_with_a_size(tmp_path, capsys):
    from disbench.cli import main

    path = tmp_path / "tiny.yaml"
    path.write_text(SIZED_SUITE)
    runs_dir = tmp_path / "runs"
    assert main(["sweep", str(path), "--size", "cpu", "--out", str(runs_dir), "--jobs", "1",
                 "--no-progress"]) == 0
    assert "tiny_claims-cpu" in capsys.readouterr().out
    assert main(["claims", str(path), "--size", "cpu", "--runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "claims of tiny_claims-cpu" in out and "b4_sparser" in out
    assert "not run — no evaluated psnr" in out  # the cpu size does not compute psnr
    out_dir = tmp_path / "tables"
    assert main(["leaderboard", str(runs_dir), "--spec", str(path), "--size", "cpu",
                 "--out", str(out_dir), "--format", "markdown"]) == 0
    assert "b4_reconstructs" in (out_dir / "claims.md").read_text()
    # the full protocol's runs are other runs (3000 steps on cuda): none of them exists
    assert main(["claims", str(path), "--runs", str(runs_dir)]) == 0
    assert "not run" in capsys.readouterr().out.split("b4_sparser")[1].split("\n")[0]
    assert main(["leaderboard", str(runs_dir), "--size", "cpu", "--out", str(out_dir)]) != 0
    assert "--size selects a size of --spec" in capsys.readouterr().err
