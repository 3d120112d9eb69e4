"""The Sprites judge: a classifier of actions and static attributes, trained once and reused.

Architecture (the judge of Li & Mandt 2018 and its successors: a frame conv encoder and
a bidirectional LSTM): every 64x64 frame goes through four stride-2 convolutions (32, 64,
128, 128 channels by default) and a dense layer; a bidirectional LSTM reads the frame features; the
time-averaged LSTM outputs feed one linear head for the action (9 classes) and one per
static attribute (body, bottomwear, topwear, hair; 6 classes each). Trained with the sum of
the five cross-entropies on the *training* split.

Storage: ``$DISBENCH_DATA/judges/sprites-<fingerprint>.pt`` with a ``.sha256`` file beside
it, through :mod:`disbench.metrics.cached_net` (atomic writes; a checksum mismatch is an
error naming the file and ``disbench judge train --force``); :func:`get_judge` reuses a
stored judge. This module never loads datasets: the caller hands in the training split (or
a callable that loads it).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from disbench.errors import DisbenchError, resolve_device
from disbench.paths import data_root
from torch import nn

from . import cached_net

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: What rebuilds a stored judge (quoted in the errors of :mod:`.cached_net`).
REBUILD = "disbench judge train --force (with the --source and --max-characters of the data)"
STATIC_HEADS = ("body", "bottomwear", "topwear", "hair")


@dataclass
class JudgeConfig:
    """Judge size and training settings.

    ``width``: channels of the first convolution (then 2w, 4w, 4w); ``pool``: average-pool
    factor applied to the frames first (1 = the full 64x64 judge; 2 or 4 give cheaper judges
    with 3 or 2 convolutions, used by the fast tests).
    """

    num_actions: int = 9
    static_sizes: tuple[int, ...] = (6, 6, 6, 6)
    channels: int = 3
    width: int = 32
    pool: int = 1
    hidden: int = 128
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0


class SpritesJudge(nn.Module):
    """Conv frame encoder + bidirectional LSTM with an action head and four static heads."""

    def __init__(self, config: JudgeConfig | None = None) -> None:
        super().__init__()
        cfg = config or JudgeConfig()
        self.config = cfg
        if cfg.pool not in (1, 2, 4):
            raise ValueError(f"pool must be 1, 2 or 4, got {cfg.pool}")
        w = cfg.width
        chans = [cfg.channels, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = [nn.AvgPool2d(cfg.pool)] if cfg.pool > 1 else []
        # stride-2 convolutions down to 4x4 (four from 64x64)
        n_conv = {1: 4, 2: 3, 4: 2}[cfg.pool]
        chans = chans[:1] + chans[-n_conv:]
        for i in range(n_conv):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), nn.Linear(chans[-1] * 16, cfg.hidden), nn.LeakyReLU(0.2)]
        self.frames = nn.Sequential(*layers)
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True, bidirectional=True)
        self.heads = nn.ModuleDict({"action": nn.Linear(2 * cfg.hidden, cfg.num_actions)})
        for name, k in zip(STATIC_HEADS, cfg.static_sizes, strict=True):
            self.heads[name] = nn.Linear(2 * cfg.hidden, k)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head for sequences ``x`` (N, T, C, 64, 64) in [0, 1]."""
        if x.dim() != 5 or tuple(x.shape[2:]) != (self.config.channels, 64, 64):
            raise ValueError(f"x must have shape (N, T, {self.config.channels}, 64, 64), "
                             f"got {tuple(x.shape)}")
        n, t = x.shape[:2]
        h = self.frames(x.reshape(n * t, *x.shape[2:])).reshape(n, t, -1)
        h, _ = self.lstm(h)
        pooled = h.mean(1)
        return {name: head(pooled) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Softmax probabilities per head."""
        return {k: v.softmax(-1) for k, v in self(x).items()}


def judge_path(fingerprint: str) -> Path:
    """Where the judge of the data with ``fingerprint`` is stored."""
    return data_root() / "judges" / f"sprites-{fingerprint}.pt"


def _labels(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(dataset.action_labels), np.asarray(dataset.static_labels)


def train_judge(dataset: Any, *, config: JudgeConfig | None = None, device: Any = "cpu",
                progress: bool = True, save: bool = True) -> SpritesJudge:
    """Train the judge on ``dataset`` (use the training split) and store it.

    Minibatches are drawn with a seeded numpy Generator; the whole uint8 split moves to
    ``device`` once and batches are converted to float there.
    """
    from tqdm.auto import tqdm

    cfg = config or JudgeConfig()
    if getattr(dataset, "split", "train") != "train":
        log.warning("training the judge on the %r split (the protocol uses 'train')",
                    dataset.split)
    if len(dataset) < 2:
        raise DisbenchError("the judge needs at least 2 training sequences")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(device, "device")
    judge = SpritesJudge(cfg).to(device)
    images = dataset.tensor(device)
    actions, static = (torch.from_numpy(a).to(device) for a in _labels(dataset))
    opt = torch.optim.Adam(judge.parameters(), lr=cfg.lr)
    judge.train()
    bs = min(cfg.batch_size, len(dataset))
    for _ in tqdm(range(cfg.steps), desc="training judge", disable=not progress, leave=False):
        rows = torch.from_numpy(rng.choice(len(dataset), size=bs, replace=False)).to(device)
        x = images[rows].float() / 255
        logits = judge(x)
        static_loss = sum(F.cross_entropy(logits[name], static[rows, k])
                          for k, name in enumerate(STATIC_HEADS))
        # the action and the static attributes weigh equally (with a plain sum the four
        # static heads take over the shared features and the action head stalls)
        loss = F.cross_entropy(logits["action"], actions[rows]) + static_loss / len(STATIC_HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    judge.eval()
    if save:
        save_judge(judge, dataset.fingerprint)
    return judge


def save_judge(judge: SpritesJudge, fingerprint: str) -> Path:
    """Store the judge atomically with its sha256 beside it."""
    cfg = asdict(judge.config)
    cfg["static_sizes"] = list(cfg["static_sizes"])
    payload = {"format_version": FORMAT_VERSION, "fingerprint": fingerprint, "config": cfg,
               "state_dict": {k: v.detach().cpu() for k, v in judge.state_dict().items()}}
    return cached_net.save(judge_path(fingerprint), payload)


def load_judge(fingerprint: str, device: Any = "cpu") -> SpritesJudge:
    """Load a stored judge, verifying its sha256 first."""
    path = judge_path(fingerprint)
    payload = cached_net.load(path, rebuild=REBUILD, format_version=FORMAT_VERSION)
    if payload is None:
        raise DisbenchError(f"no judge for {fingerprint!r} at {path}; run 'disbench judge train'")
    cfg = dict(payload["config"])
    cfg["static_sizes"] = tuple(cfg["static_sizes"])
    judge = SpritesJudge(JudgeConfig(**cfg))
    judge.load_state_dict(payload["state_dict"])
    return judge.to(resolve_device(device, "device")).eval()


def get_judge(dataset: Any, *, load_train: Callable[[], Any] | None = None,
              train_if_missing: bool = True, device: Any = "cpu",
              config: JudgeConfig | None = None, progress: bool = True) -> SpritesJudge:
    """The stored judge of ``dataset``'s data (by fingerprint), training it if needed.

    ``dataset`` may be any split. A missing judge is trained on the training split: ``dataset``
    itself when it is that split, else ``load_train()`` (a callable returning the training
    split of the same source; it is only called when the judge has to be trained).
    """
    if judge_path(dataset.fingerprint).is_file():
        return load_judge(dataset.fingerprint, device)
    if not train_if_missing:
        raise DisbenchError(f"no judge for {dataset.fingerprint!r}; run 'disbench judge train'")
    train = dataset
    if getattr(dataset, "split", "train") != "train":
        if load_train is None:
            raise DisbenchError(
                f"no judge for {dataset.fingerprint!r} and {dataset.split!r} is not the training "
                "split: train it with 'disbench judge train' (or pass load_train)"
            )
        train = load_train()
        if train.fingerprint != dataset.fingerprint:
            raise DisbenchError(
                f"the training split's fingerprint {train.fingerprint!r} differs from "
                f"{dataset.fingerprint!r}; train the judge with 'disbench judge train'"
            )
    return train_judge(train, config=config, device=device, progress=progress)


@torch.no_grad()
def judge_real_accuracy(judge: SpritesJudge, dataset: Any, *, batch_size: int = 128,
                        device: Any = "cpu") -> dict[str, float]:
    """Accuracy of each head on the real sequences of ``dataset``."""
    judge.eval()
    actions, static = _labels(dataset)
    preds: dict[str, list[np.ndarray]] = {k: [] for k in ("action", *STATIC_HEADS)}
    for s in range(0, len(dataset), batch_size):
        x = torch.from_numpy(np.array(dataset.images[s:s + batch_size])).to(device)
        out = judge(x.float() / 255)
        for k, lst in preds.items():
            lst.append(out[k].argmax(-1).cpu().numpy())
    res = {"action": float((np.concatenate(preds["action"]) == actions).mean())}
    for k, name in enumerate(STATIC_HEADS):
        res[name] = float((np.concatenate(preds[name]) == static[:, k]).mean())
    return res
