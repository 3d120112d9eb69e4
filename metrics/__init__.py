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

from ._validate import check_codes, check_factors  # noqa: F401
from .discrete import discrete_entropy, discrete_mutual_info, histogram_discretize  # noqa: F401
from .mig import mig  # noqa: F401
