"""Baseline models: one shared encoder/decoder, objectives and priors, and a registry.

``disbench.baselines.create(name, **hparams)``, ``disbench.baselines.names()``.
"""
from disbench.baselines.registry import MODELS, create, names, register

# Importing a module registers its models (each module adds its own line here).

__all__ = ["MODELS", "create", "names", "register"]
