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
    parser.add_argument("--markdown", metavar="FILE", default=None,
                        help="also write the table, with the device, versions, date and "
                             "command, as Markdown to FILE (for results/perf.md)")
    args = parser.parse_args(argv)
    rows: list[dict] = []
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
            rows.append(row)
            print(f"{row['name']:48s} {_fmt(row.get('baseline')):>12s} {_fmt(row.get('value')):>12s} "
                  f"{row.get('unit', ''):>10s} {_fmt(row.get('ratio')):>8s}  {row.get('note', '')}",
                  flush=True)
        print(f"  ({topic} took {time.perf_counter() - t0:.1f} s)", flush=True)
    if args.markdown:
        from disbench.atomic import write_text

        command = "python -m disbench.perf " + " ".join(argv if argv is not None else sys.argv[1:])
        write_text(args.markdown, markdown(rows, command.strip()))
        print(f"wrote {args.markdown}")
    return 0


def _machine() -> str:
    import os
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def markdown(rows: list[dict], command: str) -> str:
    """The rows as a Markdown table under a line naming machine, versions, date, command."""
    import datetime

    import torch

    today = datetime.date.today().isoformat()
    lines = [f"Device: {_machine()}; PyTorch {torch.__version__}; {today}.",
             f"Command: `{command}`.", "",
             "| benchmark | baseline | value | unit | ratio | note |",
             "|---|---:|---:|---|---:|---|"]
    for r in rows:
        note = str(r.get("note", "")).replace("|", "\\|")  # a literal bar in a cell
        lines.append(f"| {r['name']} | {_fmt(r.get('baseline'))} | {_fmt(r.get('value'))} | "
                     f"{r.get('unit', '')} | {_fmt(r.get('ratio'))} | {note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
