"""Baseline models: one shared encoder/decoder, objectives and priors, and a registry.

``disbench.baselines.create(name, **hparams)``, ``disbench.baselines.names()``.
"""
# ruff: noqa: I001  (one import line per model module, appended by each module's owner)
from disbench.baselines.registry import MODELS, create, names, register

# Importing a module registers its models (each module adds its own line here).
from disbench.baselines import vae  # noqa: F401
from disbench.baselines import tcvae  # noqa: F401
from disbench.baselines import factor_vae  # noqa: F401
from disbench.baselines import dip_vae  # noqa: F401
from disbench.baselines import wae  # noqa: F401
from disbench.baselines import ab_vae  # noqa: F401
from disbench.baselines import gwae  # noqa: F401
from disbench.baselines import dsvae, rwae  # noqa: F401
from disbench.baselines import annealed_vae  # noqa: F401
from disbench.baselines import weak_vae  # noqa: F401
from disbench.baselines import semi_supervised  # noqa: F401
from disbench.baselines import info_vae  # noqa: F401
from disbench.baselines import dagmm  # noqa: F401

__all__ = ["MODELS", "create", "names", "register"]
