"""Run all ``perf_*`` benchmarks and print one table (``python -m disbench.perf``)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import disbench.perf as perf_pkg


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m disbench.perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default=None, help="comma-separated topics (e.g. metrics,train)")
    args = parser.parse_args(argv)
    topics = [m.name for m in pkgutil.iter_modules(perf_pkg.__path__) if m.name.startswith("perf_")]
    if args.only:
        wanted = {f"perf_{t}" for t in args.only.split(",")}
        topics = [t for t in topics if t in wanted]
    header = f"{'benchmark':48s} {'baseline':>12s} {'value':>12s} {'unit':>10s} {'ratio':>8s}  note"
    print(header)
    print("-" * len(header))
    for topic in sorted(topics):
        mod = importlib.import_module(f"disbench.perf.{topic}")
        t0 = time.perf_counter()
        for row in mod.run(quick=args.quick):
            print(f"{row['name']:48s} {_fmt(row.get('baseline')):>12s} {_fmt(row.get('value')):>12s} "
                  f"{row.get('unit', ''):>10s} {_fmt(row.get('ratio')):>8s}  {row.get('note', '')}",
                  flush=True)
        print(f"  ({topic} took {time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
