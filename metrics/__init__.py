"""Metrics: pure functions on arrays (the array layer) and samplers over datasets.

Every metric function carries ``higher_is_better``; see :data:`HIGHER_IS_BETTER`.
"""
# Each metric module adds its own import line here.
