"""Metrics: pure functions on arrays (the array layer) and samplers over datasets.

The sampler layer's entry point is :func:`evaluate`, which runs registered evaluators on one
:class:`EvalContext`. Each metric module registers its evaluator(s) with
:func:`register_evaluator` (see :mod:`disbench.metrics.registry`), declaring there, once, its
record names, the direction of each, its default regression tolerance and what it needs.
:data:`HIGHER_IS_BETTER` (record name -> whether higher is better) and :data:`TOLERANCES` are
read-only views derived from that registry.

To add a metric: write its module (the array function and its ``@register_evaluator``
evaluator) and add its import line below.

Layering: this package imports only ``disbench.errors``, ``disbench.paths``,
``disbench.atomic`` and itself; evaluators that need other datasets get a loader from the
runner (``evaluate(..., load_dataset=...)``).
"""
from __future__ import annotations

from . import generation  # noqa: F401  (fid, fid_recon, fd_classifier(_recon), psnr, ood_auroc)
from ._validate import check_codes, check_factors  # noqa: F401
from .beta_vae import beta_vae_score  # noqa: F401
from .clustering import kmeans_ari  # noqa: F401
from .dci import dci  # noqa: F401
from .dci_es import dci_es, dci_es_explicitness  # noqa: F401
from .discrete import discrete_entropy, discrete_mutual_info, histogram_discretize  # noqa: F401
from .downstream import downstream_task  # noqa: F401
from .evaluators import EvalContext, EvalOptions, evaluate  # noqa: F401
from .factor_vae import factor_vae_score  # noqa: F401
from .fairness import fairness  # noqa: F401

# array-layer functions without an evaluator of their own
from .feature_classifier import fd_classifier  # noqa: F401
from .fid import fid, frechet_distance  # noqa: F401
from .hoyer import hoyer_per_sample, hoyer_sparsity  # noqa: F401
from .inception import inception_features  # noqa: F401
from .infomec import infomec  # noqa: F401
from .irs import irs  # noqa: F401
from .judge import entropy_y, entropy_y_given_x, inception_score, judge_accuracy  # noqa: F401

# One import line per metric module; importing a module registers its evaluators.
from .mig import mig  # noqa: F401
from .mig_variants import dcimig, jemmig, mig_sup  # noqa: F401
from .modularity import modularity_explicitness  # noqa: F401
from .ood import ood_auroc, roc_curve  # noqa: F401
from .psnr import psnr, psnr_pooled  # noqa: F401
from .reduced_downstream import reduced_downstream_task  # noqa: F401
from .registry import (  # noqa: F401
    EVALUATORS,
    HIGHER_IS_BETTER,
    TOLERANCES,
    Record,
    needs,
    register_evaluator,
    tolerance,
)
from .sap import sap  # noqa: F401
from .sequence_factors import sequence_codes  # noqa: F401
from .strong_downstream import strong_downstream_task  # noqa: F401
from .udr import udr  # noqa: F401
from .unsupervised import unsupervised  # noqa: F401
from .z_max_var import z_max_var  # noqa: F401
