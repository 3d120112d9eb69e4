"""``--backend ray``: a tiny sweep on a local Ray cluster started on 127.0.0.1 in the test."""
import json

import pytest
from disbench.sweeps.spec import parse_spec
from disbench.sweeps.sweep import run_dir_for, run_sweep

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'disbench[ray]')")
if not hasattr(__import__("disbench.metrics").metrics, "evaluate"):
    pytest.skip("disbench.metrics.evaluate is not built yet", allow_module_level=True)

SPEC = """\
name: tiny_ray
datasets: [{name: dsprites, source: synthetic}]
models: [{name: vae, latent_dim: 4}]
train: {steps: 3, batch_size: 8, log_every: 1, device: cpu}
seeds: [0, 1]
metrics: [hoyer]
eval: {num_train: 64, num_test: 32}
"""


@pytest.fixture
def local_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # On a loaded 2-core machine the raylet can take longer than Ray's default to register.
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "120")
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.usefixtures("local_ray")
def test_ray_sweep_same_layout(tmp_path):
    spec = parse_spec(SPEC)
    out = tmp_path / "runs"
    summary = run_sweep(spec, out, jobs=1, backend="ray", progress=False)
    assert summary.count("done") == 2 and summary.count("failed") == 0, summary.results
    for cfg in spec.run_configs():
        d = run_dir_for(cfg, out)  # the loky backend's layout
        assert d.parent == out / "dsprites" / "vae"
        doc = json.loads((d / "metrics.json").read_text())
        assert any(r["metric"] == "hoyer" for r in doc["records"])
        assert (d / "model.pt").is_file() and not (d / ".lock").exists()
    # The cluster is still up (the sweep did not start it, so it does not stop it).
    assert ray.is_initialized()
    again = run_sweep(spec, out, jobs=1, backend="ray", progress=False)
    assert again.count("skipped") == 2
