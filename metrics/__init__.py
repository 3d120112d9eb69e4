"""Metrics: pure functions on arrays (the array layer) and samplers over datasets.

Every metric function carries ``higher_is_better``; :data:`HIGHER_IS_BETTER` maps every record
name (the ``"metric"`` field of a ``metrics.json`` record) to whether higher is better.
The sampler layer entry point is :func:`evaluate`; evaluators are registered in
:data:`disbench.metrics.evaluators.EVALUATORS` with :func:`register_evaluator`.

To add a metric module: append its import line at the end of this file and its record names to
``HIGHER_IS_BETTER`` (one ``HIGHER_IS_BETTER["name"] = bool`` line each).
"""
from __future__ import annotations

HIGHER_IS_BETTER: dict[str, bool] = {
    "mig": True,
    "dci_disentanglement": True,
    "dci_completeness": True,
    "dci_informativeness_train": True,
    "dci_informativeness_test": True,
    "sap": True,
    "modularity": True,
    "explicitness_train": True,
    "explicitness_test": True,
    "factor_vae_score": True,
    "factor_vae_score_train": True,
    "beta_vae_score": True,
    "beta_vae_score_train": True,
    "hoyer": True,
    "gaussian_total_correlation": False,
    "gaussian_wasserstein_correlation": False,
    "gaussian_wasserstein_correlation_norm": False,
    "mutual_info_score": False,
}
# DCI with the non-reference estimators is recorded under its own names (dci_hist_gbt_..., ...).
HIGHER_IS_BETTER.update({
    f"dci_{est}_{part}": True
    for est in ("hist_gbt", "random_forest", "lasso")
    for part in ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
})

from ._validate import check_codes, check_factors  # noqa: F401
from .beta_vae import beta_vae_score  # noqa: F401
from .dci import dci  # noqa: F401
from .discrete import discrete_entropy, discrete_mutual_info, histogram_discretize  # noqa: F401
from .evaluators import EVALUATORS, EvalContext, EvalOptions, evaluate, register_evaluator  # noqa: F401
from .factor_vae import factor_vae_score  # noqa: F401
from .hoyer import hoyer_per_sample, hoyer_sparsity  # noqa: F401
from .mig import mig  # noqa: F401
from .modularity import modularity_explicitness  # noqa: F401
from .sap import sap  # noqa: F401
from .unsupervised import unsupervised  # noqa: F401

# generation, reconstruction and OoD metrics (issue 5)
HIGHER_IS_BETTER.update({"fid": False, "fid_recon": False, "fd_classifier": False,
                         "fd_classifier_recon": False, "psnr": True, "ood_auroc": True})
from . import generation  # noqa: F401
from .feature_classifier import fd_classifier  # noqa: F401
from .fid import fid, frechet_distance  # noqa: F401
from .inception import inception_features  # noqa: F401
from .ood import ood_auroc, roc_curve  # noqa: F401
from .psnr import psnr, psnr_pooled  # noqa: F401

# sequence metrics with the Sprites judge (issue 6): judge_<measure>_fix_<static|dynamic>
HIGHER_IS_BETTER.update({
    f"judge_{m}_fix_{f}": m != "entropy_y_given_x" for f in ("static", "dynamic")
    for m in ("accuracy", "inception_score", "entropy_y_given_x", "entropy_y")
})
from .judge import entropy_y, entropy_y_given_x, inception_score, judge_accuracy  # noqa: F401
