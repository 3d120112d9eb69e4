"""``disbench train MODEL --dataset NAME ...``: train one model into its run folder.

The setting flags (``--dataset``, ``--steps``, ...) are derived from the fields of
:class:`disbench.run.config.RunConfig`: a new setting there is a new flag here.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from disbench.errors import DisbenchError
from disbench.run.settings import add_flags, defer_flags

DESCRIPTION = """\
Train one baseline model on one dataset. The run folder is
OUT/<dataset>/<model>/<hash>-s<seed>/ (the hash identifies the resolved configuration)
and holds config.json, model.pt (checkpointed every --checkpoint-every steps) and
train_log.csv. A finished run is not retrained; an interrupted one continues with
--resume. Hyperparameters default to each model's paper values; override any of them
with --set key=value (values are read as YAML scalars: 4, 1e-3, true, [1, 64, 64]).
"""


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``--set`` values, read as the spec reader reads YAML (``1e-3`` is a float)."""
    from disbench.sweeps.spec import read_yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DisbenchError(f"--set expects key=value, got {item!r} (e.g. --set beta=4)")
        out[key] = read_yaml(value, f"--set {item!r}")[0] if value.strip() else None
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train one model on one dataset", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model hyperparameter, repeatable (e.g. --set beta=4 "
                        "--set latent_dim=8); unknown keys are an error listing valid ones")
    p.add_argument("--out", default="runs", metavar="DIR",
                   help="runs root folder (default: ./runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    defer_flags(p, _setting_flags)


def _setting_flags(p: argparse.ArgumentParser) -> None:
    """MODEL and one flag per run setting, from the RunConfig field declarations."""
    from disbench.run.config import FLAG_FIELDS, RunConfig

    model = next(f for f in dataclasses.fields(RunConfig) if f.name == "model")
    p.add_argument("model", metavar="MODEL", help=model.metadata["help"])
    add_flags(p, RunConfig, FLAG_FIELDS)


def run(args: argparse.Namespace) -> int:
    from disbench.cli import out_folder
    from disbench.run.config import FLAG_FIELDS, RunConfig
    from disbench.run.trainer import train

    out_folder(args.out)
    cfg = RunConfig(model=args.model, hparams=_parse_set(args.sets),
                    **{name: getattr(args, name) for name in FLAG_FIELDS})
    run_dir = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(run_dir)
    return 0
