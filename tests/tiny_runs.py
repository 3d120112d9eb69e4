"""Tiny real runs for the report tests, trained once per test session and shared.

Three variants on the dSprites twin (vae; beta_vae with beta 2 and 4), two seeds each, a few
steps, latent_dim 4, scored with hoyer, mig and sap on 64/32 points: enough for every
figure and page of the site, in seconds.
"""
import atexit
import shutil
import tempfile
from pathlib import Path

SPEC = """\
name: tiny_report
datasets: [{name: dsprites, source: synthetic}]
models: [{name: vae, latent_dim: 4}, {name: beta_vae, latent_dim: 4, beta: [2, 4]}]
train: {steps: 4, batch_size: 8, log_every: 2, device: cpu}
seeds: [0, 1]
metrics: [hoyer, mig, sap]
eval: {num_train: 64, num_test: 32}
"""
CLAIMS = """\
claims:
  - id: beta4_sparser_than_vae
    source: "a test"
    statement: "beta_vae (beta=4) has sparser codes than the VAE"
    metric: hoyer
    better: {model: beta_vae, beta: 4}
    than: {model: vae}
  - id: not_run_claim
    source: "a test"
    statement: "a variant that was not trained"
    metric: mig
    better: {model: beta_vae, beta: 16}
    than: {model: vae}
"""
_CACHE: dict[str, Path] = {}


def tiny_runs() -> tuple[Path, Path, Path]:
    """``(runs_root, spec, spec_with_claims)``; trained on the first call of the session."""
    if "root" not in _CACHE:
        from disbench.sweeps.spec import load_spec
        from disbench.sweeps.sweep import run_sweep

        base = Path(tempfile.mkdtemp(prefix="disbench-tiny-runs-"))
        atexit.register(shutil.rmtree, base, True)
        spec = base / "tiny.yaml"
        spec.write_text(SPEC)
        claims = base / "tiny_claims.yaml"
        # The claims' suite also lists beta 16, which is never swept: its claim is "not run".
        claims.write_text(SPEC.replace("beta: [2, 4]", "beta: [2, 4, 16]") + CLAIMS)
        statuses = run_sweep(load_spec(spec), base / "runs", jobs=1, progress=False)
        assert statuses.count("done") == 6, statuses
        _CACHE.update(root=base / "runs", spec=spec, claims=claims)
    return _CACHE["root"], _CACHE["spec"], _CACHE["claims"]


def built_site() -> Path:
    """The site of :func:`tiny_runs` (with claims), built once; returns its index page."""
    if "site" not in _CACHE:
        from disbench.cli import main

        root, _, claims = tiny_runs()
        out = root.parent / "site"
        assert main(["report", str(root), "--out", str(out), "--spec", str(claims),
                     "--no-progress"]) == 0
        _CACHE["site"] = out / "index.html"
    return _CACHE["site"]
