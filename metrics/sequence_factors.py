"""MIG and DCI of a sequence model's static and dynamic codes against Sprites' factors.

For the R-WAE suite (Han et al., ICLR 2021, "Disentangled Recurrent Wasserstein
Autoencoder"): the static code ``encode_static(x)`` (N, S) is scored against the four static
factors (body, bottomwear, topwear, hair: ``static_labels``) and the dynamic codes
``encode_dynamic(x)`` (N, T, d), averaged over the T frames to one (N, d) code per sequence
(a disbench choice: the action is one label per sequence), against the action label
(``action_labels``, 9 classes = 3 actions x 3 directions). The scores are the library's own
:func:`disbench.metrics.mig.mig` (Chen et al. 2018, disentanglement_lib's discretisation) and
DCI (:mod:`disbench.metrics.dci`, disentanglement_lib's gradient-boosted trees); with a single
dynamic factor DCI's disentanglement (entropy in base K = 1) is undefined, so the dynamic part
records MIG, DCI completeness and informativeness only. Neither paper reports these numbers;
the issue asking for this suite does.

Points: ``num_train`` + ``num_test`` distinct sequences of the evaluated split, drawn with
the evaluation seed (stream ``"sequence_factors"``), capped at the split's size (the
train/test parts are then split in the same proportion); MIG and the predictors are fitted on
the train part, informativeness is the test part's accuracy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._device import module_device
from .dci import completeness, disentanglement, importance_matrix
from .mig import mig
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["sequence_codes"]

STATIC_RECORDS = ("static_mig", "static_dci_disentanglement", "static_dci_completeness",
                  "static_dci_informativeness_test")
DYNAMIC_RECORDS = ("dynamic_mig", "dynamic_dci_completeness", "dynamic_dci_informativeness_test")


def sequence_codes(model: Any, images: Any, *, batch_size: int = 64,
                   device: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(static codes (N, S), frame-averaged dynamic codes (N, d)) of uint8 sequences."""
    import torch

    device = module_device(model, device)
    was_training = model.training
    model.eval()
    stat, dyn = [], []
    try:
        with torch.no_grad():
            for s in range(0, len(images), batch_size):
                x = torch.from_numpy(np.asarray(images[s:s + batch_size])).to(device)
                x = x.float() / 255.0
                stat.append(model.encode_static(x).double().cpu().numpy())
                dyn.append(model.encode_dynamic(x).mean(dim=1).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(stat), np.concatenate(dyn)


def _split_indices(ctx: EvalContext, n: int) -> tuple[np.ndarray, np.ndarray]:
    want = ctx.num_train + ctx.num_test
    take = min(want, n)
    idx = ctx.rng("sequence_factors").permutation(n)[:take]
    n_train = max(2, round(take * ctx.num_train / want))
    return np.sort(idx[:n_train]), np.sort(idx[n_train:])


def _scores(codes: tuple[np.ndarray, np.ndarray], factors: tuple[np.ndarray, np.ndarray],
            seed: int, static: bool) -> dict[str, float]:
    (c_tr, c_te), (f_tr, f_te) = codes, factors
    r, _, acc_test = importance_matrix(c_tr, f_tr, c_te, f_te, random_state=seed)
    prefix = "static" if static else "dynamic"
    out = {f"{prefix}_mig": mig(c_tr, f_tr), f"{prefix}_dci_completeness": completeness(r),
           f"{prefix}_dci_informativeness_test": acc_test}
    if static:
        out["static_dci_disentanglement"] = disentanglement(r)
    return out


@register_evaluator("sequence_factors", needs=("sequence", "sequence_model"), records=[
    Record(name, higher_is_better=True) for name in STATIC_RECORDS + DYNAMIC_RECORDS])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """MIG and DCI of the static codes (4 static factors) and dynamic codes (action)."""
    from disbench.errors import DisbenchError

    model, ds = ctx.model, ctx.dataset
    if not getattr(model, "is_sequence", False) or not hasattr(ds, "action_labels"):
        raise DisbenchError("metric 'sequence_factors' needs a sequence model (dsvae, rwae_mmd, "
                            "rwae_gan) evaluated on the sprites dataset")
    tr, te = _split_indices(ctx, len(ds.images))
    if len(te) < 1:
        raise DisbenchError(f"sequence_factors: the split has {len(ds.images)} sequences, too few "
                            "for a train and a test part")
    codes = {part: sequence_codes(model, ds.images[idx], batch_size=ctx.batch_size,
                                  device=ctx.device) for part, idx in (("tr", tr), ("te", te))}
    static = np.asarray(ds.static_labels, dtype=np.int64)
    action = np.asarray(ds.action_labels, dtype=np.int64)[:, None]
    out = _scores((codes["tr"][0], codes["te"][0]), (static[tr], static[te]),
                  ctx.random_state, static=True)
    out.update(_scores((codes["tr"][1], codes["te"][1]), (action[tr], action[te]),
                       ctx.random_state, static=False))
    spec = {"sequences": len(tr), "test_sequences": len(te), "dynamic": "mean over frames"}
    return [ctx.record(name, out[name], version="1", **spec)
            for name in STATIC_RECORDS + DYNAMIC_RECORDS]
