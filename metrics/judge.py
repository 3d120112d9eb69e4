"""Sequence metrics with a judge classifier: accuracy, inception score and entropies.

The protocol of Li & Mandt 2018 (sec. 4.1) and later sequential-disentanglement papers
(S3VAE, Zhu et al. 2020; C-DSVAE, Bai et al. 2021): a classifier (the *judge*, trained on
the real data's labels, see :mod:`disbench.metrics.judge_net`) labels generated sequences. One part of
the representation is kept from real sequences and the other is resampled from the
model's prior; a disentangled model keeps the labels of the kept part.

- ``fix="dynamic"``: dynamics (z_{1:T}) encoded from data, static code drawn from the prior;
  the judge's action prediction should match the data's action label.
- ``fix="static"``: static code encoded from data, dynamics drawn from the prior; the
  judge's four static attribute predictions should match the data's attributes.

On the kept part's predicted class probabilities p(y|x) the same papers report

- ``inception_score`` = exp(E_x KL(p(y|x) || p(y))) with p(y) = E_x p(y|x) (Salimans et
  al. 2016), at most the number of classes K;
- ``entropy_y_given_x`` = E_x H(p(y|x)) (confidence; lower is better);
- ``entropy_y`` = H(p(y)) (diversity; higher is better, at most log K).

All in nats. The pure functions take an array of probabilities (N, K).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from disbench.errors import check_random_state, random_integers

from ._device import module_device
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

FIX_CHOICES = ("static", "dynamic")
#: the judge's measures, recorded per protocol as ``judge_<measure>_fix_<static|dynamic>``
MEASURES = ("accuracy", "inception_score", "entropy_y_given_x", "entropy_y")
#: whether higher is better for each measure (entropy_y_given_x is confidence: lower)
_HIGHER = {"accuracy": True, "inception_score": True, "entropy_y_given_x": False,
           "entropy_y": True}


def _check_probs(probs: Any) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"probs must be a 2-D array (N, K) with K >= 2, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or inf")
    if np.any(p < 0):
        raise ValueError("probs contains negative values")
    if not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("probs rows must sum to 1 (pass softmax probabilities, not logits)")
    return p / p.sum(1, keepdims=True)


def _xlogx(p: np.ndarray) -> np.ndarray:
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def entropy_y_given_x(probs: Any) -> float:
    """E_x H(p(y|x)) in nats: the mean entropy of the rows of ``probs`` (N, K)."""
    p = _check_probs(probs)
    return float(-_xlogx(p).sum(1).mean())


def entropy_y(probs: Any) -> float:
    """H(p(y)) in nats with p(y) the mean row of ``probs`` (N, K); at most log K."""
    p = _check_probs(probs)
    return float(-_xlogx(p.mean(0)).sum())


def inception_score(probs: Any) -> float:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016) for ``probs`` (N, K).

    Equals exp(H(y) - H(y|x)), so 1 <= IS <= K.
    """
    p = _check_probs(probs)
    marginal = p.mean(0)
    log_ratio = np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(marginal > 0, marginal, 1.0))
    kl = np.where(p > 0, p * log_ratio, 0.0).sum(1)
    return float(np.exp(kl.mean()))


def _judge_rng(random_state: Any) -> Any:
    """An int seeds a ``numpy.random.Generator`` here (``default_rng``, as this metric always
    did, so its numbers do not change); a RandomState or Generator is used as it is."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    return check_random_state(random_state)


def _kept_labels(dataset: Any, idx: np.ndarray, fix: str) -> dict[str, np.ndarray]:
    """Head name -> the data's labels of the kept part for the sequences ``idx``."""
    if fix == "dynamic":
        return {"action": np.asarray(dataset.action_labels)[idx]}
    static = np.asarray(dataset.static_labels)[idx]
    return {h: static[:, k] for k, h in enumerate(dataset.static_factor_names)}


def _judge_probs(model: Any, judge: Any, dataset: Any, idx: np.ndarray, heads: list[str], *,
                 fix: str, gen: Any, batch_size: int, device: Any) -> dict[str, np.ndarray]:
    """The judge's probabilities per head on sequences that keep ``fix`` of ``idx``."""
    import torch

    probs: dict[str, list[np.ndarray]] = {h: [] for h in heads}
    was_training = model.training
    model.eval()
    judge.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(idx), batch_size):
                rows = idx[s:s + batch_size]
                x = torch.from_numpy(np.asarray(dataset.images[rows])).to(device).float() / 255
                if fix == "dynamic":
                    dyn = model.encode_dynamic(x)
                    stat = model.sample_static(len(rows), generator=gen)
                else:
                    stat = model.encode_static(x)
                    dyn = model.sample_dynamic(len(rows), generator=gen)
                out = judge.predict_proba(model.decode_parts(stat, dyn))
                for h in heads:
                    probs[h].append(out[h].float().cpu().numpy())
    finally:
        model.train(was_training)
    return {h: np.concatenate(p) for h, p in probs.items()}


def _summarise(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-head measures and their means over the heads."""
    result: dict[str, float] = {}
    for h, p in probs.items():
        result[f"accuracy_{h}"] = float((p.argmax(1) == labels[h]).mean())
        p = p / p.sum(1, keepdims=True)
        result[f"inception_score_{h}"] = inception_score(p)
        result[f"entropy_y_given_x_{h}"] = entropy_y_given_x(p)
        result[f"entropy_y_{h}"] = entropy_y(p)
    for key in MEASURES:
        result[key] = float(np.mean([result[f"{key}_{h}"] for h in probs]))
    return result


def judge_accuracy(model: Any, judge: Any, dataset: Any, *, fix: str, num_samples: int = 1000,
                   batch_size: int = 64, random_state: Any = 0,
                   device: Any = None) -> dict[str, float]:
    """Judge accuracy on the kept part when the other part is resampled from the prior.

    Parameters
    ----------
    model : a sequence model (``encode_static``, ``encode_dynamic``, ``decode_parts``,
        ``sample_static``, ``sample_dynamic``).
    judge : :class:`disbench.metrics.judge_net.SpritesJudge` (``predict_proba(x) -> dict``).
    dataset : a Sprites dataset (``images``, ``static_labels``, ``action_labels``).
    fix : {"static", "dynamic"}
        Which part is kept from the data (the other is drawn from the prior).
    num_samples : int
        Number of data sequences drawn (without replacement, capped at ``len(dataset)``).
    random_state : int, numpy Generator or RandomState
        Picks the sequences and seeds the prior draws (a torch Generator). An int seeds a
        ``numpy.random.default_rng`` (not a RandomState: these are this metric's numbers).
    device : optional
        Default: the model's device.

    Returns
    -------
    dict
        ``accuracy`` (mean over the kept heads), ``inception_score``, ``entropy_y_given_x``,
        ``entropy_y`` (means over the kept heads) and ``accuracy_<head>``,
        ``inception_score_<head>``, ... per head (``action`` for fix="dynamic"; ``body``,
        ``bottomwear``, ``topwear``, ``hair`` for fix="static").
    """
    import torch

    if fix not in FIX_CHOICES:
        raise ValueError(f"fix must be 'static' or 'dynamic', got {fix!r}")
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2, got {num_samples}")
    rng = _judge_rng(random_state)
    n = min(int(num_samples), len(dataset))
    idx = np.sort(rng.choice(len(dataset), size=n, replace=False))
    gen_seed = int(random_integers(rng, 2**63 - 1, 1)[0])
    device = module_device(model, device)
    gen = torch.Generator(device=device).manual_seed(gen_seed)
    labels = _kept_labels(dataset, idx, fix)
    probs = _judge_probs(model, judge, dataset, idx, list(labels), fix=fix, gen=gen,
                         batch_size=batch_size, device=device)
    return _summarise(probs, labels)


# ---------------------------------------------------------------------- evaluator ("judge")
@register_evaluator("judge", needs=("sequence", "sequence_model", "load_dataset"), records=[
    Record(f"judge_{key}_fix_{fix}", higher_is_better=_HIGHER[key])
    for fix in FIX_CHOICES for key in MEASURES
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """Both protocols (fix="dynamic", fix="static") on up to ``num_test`` sequences.

    The judge of the dataset's data is loaded (or trained once on its training split, loaded
    with ``ctx.load_dataset`` when the evaluated split is another one; see
    :func:`disbench.metrics.judge_net.get_judge`).
    """
    from disbench.errors import DisbenchError
    from disbench.metrics.judge_net import get_judge

    model, dataset = ctx.model, ctx.dataset
    if not getattr(model, "is_sequence", False) or not hasattr(dataset, "action_labels"):
        raise DisbenchError("metric 'judge' needs a sequence model (dsvae, rwae_mmd, "
                            "rwae_gan) evaluated on the sprites dataset")
    device = module_device(model, ctx.device)
    judge = get_judge(dataset, device=device, load_train=lambda: ctx.load(
        "sprites", source=dataset.source, split="train",
        max_characters=getattr(dataset, "max_characters", None)))
    n = min(ctx.num_test, len(dataset))
    seed = int(ctx.rng("judge").randint(0, 2**31 - 1))
    records = []
    for fix in FIX_CHOICES:
        out = judge_accuracy(model, judge, dataset, fix=fix, num_samples=n,
                             batch_size=ctx.batch_size, random_state=seed, device=device)
        records.extend(ctx.record(
            f"judge_{key}_fix_{fix}", out[key], version="1", sequences=n, fix=fix,
            resampled="static" if fix == "dynamic" else "dynamic",
            heads="action" if fix == "dynamic" else "body,bottomwear,topwear,hair",
            judge=f"sprites-{dataset.fingerprint}") for key in MEASURES)
    return records
