"""``make perf``: benchmarks that print each figure beside a straightforward baseline.

Every module ``disbench.perf.perf_<topic>`` defines ``run(quick: bool) -> list[dict]`` with
rows ``{"name", "baseline", "value", "unit", "ratio", "note"}``.
"""
