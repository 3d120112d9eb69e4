"""``disbench train MODEL --dataset NAME ...``: train one model into its run folder."""
from __future__ import annotations

import argparse
from typing import Any

from disbench.errors import DisbenchError

DESCRIPTION = """\
Train one baseline model on one dataset. The run folder is
OUT/<dataset>/<model>/<hash>-s<seed>/ (the hash identifies the resolved configuration)
and holds config.json, model.pt (checkpointed every --checkpoint-every steps) and
train_log.csv. A finished run is not retrained; an interrupted one continues with
--resume. Hyperparameters default to each model's paper values; override any of them
with --set key=value (values are read as YAML scalars: 4, 1e-3, true, [1, 64, 64]).
"""


def _parse_set(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DisbenchError(f"--set expects key=value, got {item!r} (e.g. --set beta=4)")
        try:
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise DisbenchError(f"--set {item!r}: value is not valid YAML ({exc})") from None
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train one model on one dataset", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL",
                   help="model name (vae, beta_vae, beta_tcvae, factor_vae, dip_vae_i, "
                        "dip_vae_ii, wae_mmd, wae_gan, ab_vae, gwae, ...)")
    p.add_argument("--dataset", required=True, metavar="NAME",
                   help="dataset name (dsprites, shapes3d, mnist, ...; see 'disbench datasets "
                        "list')")
    p.add_argument("--source", default="auto", choices=["auto", "official", "synthetic"],
                   help="official files, the procedural twin, or auto: official when cached, "
                        "else the twin (default: auto)")
    p.add_argument("--split", default=None, help="dataset split (default: the dataset's own)")
    p.add_argument("--steps", type=int, default=300_000,
                   help="optimisation steps (default: 300000, Locatello et al. 2019)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of initialisation, batch order and noise (default: 0)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model hyperparameter, repeatable (e.g. --set beta=4 "
                        "--set latent_dim=8); unknown keys are an error listing valid ones")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the main optimiser (default: the paper's, e.g. 1e-4)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to train; auto picks CUDA when present (default: auto)")
    p.add_argument("--out", default="runs", metavar="DIR",
                   help="runs root folder (default: ./runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--amp", default=None, choices=["bf16"],
                   help="bfloat16 autocast for the forward passes (off by default)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the encoder/decoder (slow start, faster steps on GPU)")
    p.add_argument("--log-every", type=int, default=100, metavar="N",
                   help="write the mean loss terms to train_log.csv every N steps (default: 100)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                   help="save model.pt every N steps (default: 1000)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from disbench.run.config import RunConfig
    from disbench.run.trainer import train

    cfg = RunConfig(
        model=args.model, dataset=args.dataset, hparams=_parse_set(args.sets),
        source=args.source, split=args.split, steps=args.steps, batch_size=args.batch_size,
        seed=args.seed, lr=args.lr, log_every=args.log_every, amp=args.amp,
        compile=args.compile, device=args.device, checkpoint_every=args.checkpoint_every,
    )
    run_dir = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(run_dir)
    return 0
