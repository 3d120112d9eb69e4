"""Judge metrics: closed forms of IS and the entropies, the judge, judge_accuracy, GIFs."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from disbench.datasets import get
from disbench.datasets import sprites as S
from disbench.errors import DisbenchError
from disbench.metrics import judge_net as J
from disbench.metrics.judge import (
    entropy_y,
    entropy_y_given_x,
    inception_score,
    judge_accuracy,
)

# A cheap judge (16x16 pooled frames) so the test trains in seconds on one CPU thread.
FAST = J.JudgeConfig(steps=250, batch_size=16, hidden=32, width=8, pool=4, lr=3e-3)
CHARS = 12  # 108 twin sequences


def test_closed_forms():
    k = 5
    uniform = np.full((7, k), 1 / k)
    assert inception_score(uniform) == pytest.approx(1.0)
    assert entropy_y_given_x(uniform) == pytest.approx(math.log(k))
    assert entropy_y(uniform) == pytest.approx(math.log(k))
    onehot = np.eye(k)[np.arange(20) % k]  # confident and balanced: the maximum
    assert inception_score(onehot) == pytest.approx(k)
    assert entropy_y_given_x(onehot) == pytest.approx(0.0)
    assert entropy_y(onehot) == pytest.approx(math.log(k))
    collapsed = np.eye(k)[np.zeros(9, int)]  # confident, one class only
    assert inception_score(collapsed) == pytest.approx(1.0)
    assert entropy_y(collapsed) == pytest.approx(0.0)
    p = np.array([[1.0, 0.0], [0.5, 0.5]])  # p(y) = (3/4, 1/4)
    hy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert entropy_y(p) == pytest.approx(hy)
    assert entropy_y_given_x(p) == pytest.approx(0.5 * math.log(2))
    kl = 0.5 * (math.log(1 / 0.75)) + 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    assert inception_score(p) == pytest.approx(math.exp(kl))


def test_bounds_on_random_probabilities():
    rng = np.random.default_rng(0)
    for k in (2, 6, 9):
        p = rng.dirichlet(np.full(k, 0.3), size=50)
        is_, hy, hyx = inception_score(p), entropy_y(p), entropy_y_given_x(p)
        assert 1.0 <= is_ <= k and 0.0 <= hy <= math.log(k) + 1e-12
        assert is_ == pytest.approx(math.exp(hy - hyx))


def test_bad_probabilities():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.array([[2.0, 1.0], [0.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN"):
        entropy_y(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        entropy_y_given_x(np.array([0.5, 0.5]))


class _Oracle(torch.nn.Module):
    """A perfectly disentangled 'model' of the twin: codes are the labels themselves.

    With ``ignore_kept`` it decodes only the resampled part (a fully entangled failure).
    """

    def __init__(self, dataset, ignore_kept=None):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.row_of = {bytes(img.tobytes()): k for k, img in enumerate(np.array(dataset.images))}
        self.static = torch.from_numpy(dataset.static_labels)
        self.action = torch.from_numpy(dataset.action_labels)
        self.ignore_kept = ignore_kept

    def _lookup(self, x):  # exact match of the uint8 sequence (test helper, small batches)
        u8 = (x * 255).round().to(torch.uint8).numpy()
        return torch.tensor([self.row_of[u.tobytes()] for u in u8])

    def encode_static(self, x):
        return self.static[self._lookup(x)]

    def encode_dynamic(self, x):
        return self.action[self._lookup(x)]

    def sample_static(self, n, generator=None):
        return torch.randint(0, 6, (n, 4), generator=generator)

    def sample_dynamic(self, n, generator=None):
        return torch.randint(0, 9, (n,), generator=generator)

    def decode_parts(self, static, dynamic):
        if self.ignore_kept == "static":
            static = self.sample_static(len(static))
        if self.ignore_kept == "dynamic":
            dynamic = self.sample_dynamic(len(dynamic))
        chars = (static @ torch.tensor([216, 36, 6, 1])).numpy()
        seqs = S.render_twin(chars).reshape(len(chars), 9, 8, 3, 64, 64)
        return torch.from_numpy(seqs[np.arange(len(chars)), dynamic.numpy()]).float() / 255


@pytest.fixture(scope="module")
def trained():
    ds = get("sprites", source="synthetic", split="train", max_characters=CHARS)
    judge = J.train_judge(ds, config=FAST, progress=False)
    return ds, judge


def test_judge_far_above_chance_and_stored(trained):
    ds, judge = trained
    acc = J.judge_real_accuracy(judge, ds)
    assert acc["action"] > 0.8, acc  # chance 1/9
    for name in ("body", "bottomwear", "topwear", "hair"):
        assert acc[name] > 0.8, acc  # chance 1/6
    path = J.judge_path(ds.fingerprint)
    assert path.is_file() and path.with_name(path.name + ".sha256").is_file()
    again = J.get_judge(ds, train_if_missing=False)
    x = ds.tensor()[:4].float() / 255
    torch.testing.assert_close(again(x)["action"], judge(x)["action"])


def test_judge_checksum_is_verified(trained, tmp_path, monkeypatch):
    _, judge = trained
    monkeypatch.setenv("DISBENCH_DATA", str(tmp_path))
    path = J.save_judge(judge, "test-fp")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DisbenchError, match="sha256"):
        J.load_judge("test-fp")
    with pytest.raises(DisbenchError, match="judge train"):
        J.load_judge("absent")


def test_judge_accuracy_oracle_and_failure(trained):
    ds, judge = trained
    oracle = _Oracle(ds)
    for fix in ("dynamic", "static"):
        res = judge_accuracy(oracle, judge, ds, fix=fix, num_samples=40, random_state=0)
        assert res["accuracy"] > 0.8, (fix, res)
        k = 9 if fix == "dynamic" else 6
        assert 1.0 <= res["inception_score"] <= k
        assert res["entropy_y"] <= math.log(k) + 1e-9
    res = judge_accuracy(oracle, judge, ds, fix="dynamic", num_samples=40, random_state=0)
    assert set(res) >= {"accuracy_action", "inception_score_action", "entropy_y_action"}
    again = judge_accuracy(oracle, judge, ds, fix="dynamic", num_samples=40, random_state=0)
    assert again == res  # deterministic given random_state
    broken = _Oracle(ds, ignore_kept="dynamic")
    bad = judge_accuracy(broken, judge, ds, fix="dynamic", num_samples=40, random_state=0)
    assert bad["accuracy"] < 0.5, bad
    with pytest.raises(ValueError, match="fix"):
        judge_accuracy(oracle, judge, ds, fix="both")


def test_judge_accuracy_runs_on_a_sequence_model(trained, tmp_path):
    from disbench.baselines.dsvae import DSVAE, DSVAEHparams
    from disbench.report.sprite_gifs import save_sequence_gif, write_model_gifs

    ds, judge = trained
    torch.manual_seed(0)
    model = DSVAE(DSVAEHparams(static_dim=4, dynamic_dim=2, hidden_dim=8))
    res = judge_accuracy(model, judge, ds, fix="static", num_samples=8, batch_size=4)
    assert 0.0 <= res["accuracy"] <= 1.0 and 1.0 <= res["inception_score"] <= 6.0
    paths = write_model_gifs(model, ds, tmp_path, n=3)
    from PIL import Image

    # 8 frames of 100 ms each. Pillow stores a frame equal to the one before it by
    # lengthening that one (an untrained model may repeat frames), so count play time.
    for name in ("real", "reconstructed", "swapped", "generated"):
        with Image.open(paths[name]) as im:
            durations = []
            for i in range(im.n_frames):
                im.seek(i)
                durations.append(im.info["duration"])
        assert sum(durations) == 8 * 100 and 1 <= len(durations) <= 8
    with pytest.raises(ValueError, match="shape"):
        save_sequence_gif(np.zeros((2, 3, 4)), tmp_path / "bad.gif")


def test_cli_judge_help():
    out = subprocess.run([sys.executable, "-m", "disbench", "judge", "train", "--help"],
                         capture_output=True, text=True, check=True)
    assert "--steps" in out.stdout and "--source" in out.stdout


def test_judge_evaluator_records(trained):
    from disbench.baselines.dsvae import DSVAE, DSVAEHparams
    from disbench.metrics import EVALUATORS, HIGHER_IS_BETTER, evaluate

    ds, _ = trained  # the fixture stored this data's judge: evaluate reuses it
    torch.manual_seed(0)
    model = DSVAE(DSVAEHparams(static_dim=4, dynamic_dim=2, hidden_dim=8))
    records = evaluate(model, ds, ["judge"], num_test=6, batch_size=3)
    assert {r["metric"] for r in records} == set(EVALUATORS["judge"].record_names)
    assert len(records) == 8  # four measures x two protocols
    for r in records:
        assert r["higher_is_better"] == HIGHER_IS_BETTER[r["metric"]]
        assert math.isfinite(r["value"]) and r["spec"]["sequences"] == 6
    with pytest.raises(DisbenchError, match="sequence model"):
        evaluate(torch.nn.Linear(1, 1), ds, ["judge"], num_test=6)


def test_cli_judge_train_stores_and_reuses(empty_cache, capsys):
    from disbench.cli import main

    args = ["judge", "train", "--source", "synthetic", "--steps", "2", "--batch-size", "4",
            "--max-characters", "2", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored the judge" in out and "test accuracy: action" in out
    assert (empty_cache / "judges" / "sprites-synthetic-v1-seed0-first2.pt").is_file()
    assert main(args) == 0
    assert "reusing the stored judge" in capsys.readouterr().out
    assert main(["judge", "train", "--source", "official", "--max-characters", "2"]) == 1
    assert "body/0.png" in capsys.readouterr().err


@pytest.mark.usefixtures("empty_cache")
def test_judge_evaluator_trains_on_the_training_split_from_the_loader(monkeypatch):
    from disbench.baselines.dsvae import DSVAE, DSVAEHparams
    from disbench.metrics import evaluate

    test = get("sprites", source="synthetic", split="test", max_characters=2)
    train = get("sprites", source="synthetic", split="train", max_characters=2)
    calls, trained_on = [], []

    def loader(name, **kw):
        calls.append((name, kw))
        return train

    def fake_train(ds, **kw):
        trained_on.append(ds.split)
        torch.manual_seed(0)
        return J.SpritesJudge(J.JudgeConfig(width=4, pool=4, hidden=8))

    monkeypatch.setattr(J, "train_judge", fake_train)
    torch.manual_seed(0)
    model = DSVAE(DSVAEHparams(static_dim=4, dynamic_dim=2, hidden_dim=8))
    with pytest.raises(DisbenchError, match="pass load_dataset="):
        evaluate(model, test, ["judge"], num_test=4)  # no loader: a clear error
    records = evaluate(model, test, ["judge"], num_test=4, load_dataset=loader)
    assert calls == [("sprites", {"source": "synthetic", "split": "train", "max_characters": 2})]
    assert trained_on == ["train"] and len(records) == 8
