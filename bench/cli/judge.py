"""``disbench judge train``: train (or reuse) the Sprites judge classifier."""
from __future__ import annotations

import argparse

from disbench.errors import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="the Sprites judge classifier used by the sequence metrics",
        description=(
            "The judge is a classifier (conv frame encoder + bidirectional LSTM) of the "
            "Sprites action and the four static attributes, trained on the training split. "
            "It is stored under $DISBENCH_DATA/judges/sprites-<fingerprint>.pt with its "
            "sha256 beside it and reused by judge_accuracy; a stored judge that fails its "
            "checksum is an error until it is rebuilt with 'disbench judge train --force'."
        ),
    )
    jsub = p.add_subparsers(dest="judge_command", metavar="ACTION")
    t = jsub.add_parser(
        "train",
        help="train the judge on the training split and store it",
        description=(
            "Train the Sprites judge on the training split of the chosen source and store "
            "it (atomically, with a sha256 file). An existing judge for the same data is "
            "reused unless --force is given (use --force to rebuild a corrupted one). Prints "
            "the judge's accuracy per head on the training and test splits."
        ),
    )
    t.add_argument("--source", default="auto", choices=("auto", "official", "synthetic"),
                   help="Sprites data to train on (default: auto)")
    t.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    t.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--device", default="auto", choices=DEVICES,
                   help="device (default: cuda when available)")
    t.add_argument("--max-characters", type=int, default=None,
                   help="use only the first K characters of each split (quick runs)")
    t.add_argument("--force", action="store_true", help="retrain even if a judge is stored")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: p.print_help() or 2)  # noqa: ARG005 (a command's func(args))


def run_train(args: argparse.Namespace) -> int:
    from disbench.datasets import get
    from disbench.errors import DisbenchError, resolve_device
    from disbench.metrics import judge_net as J

    if args.steps < 1 or args.batch_size < 1:
        raise DisbenchError("--steps and --batch-size must be >= 1")
    device = resolve_device(args.device, "--device")
    kw = {"max_characters": args.max_characters} if args.max_characters else {}
    train = get("sprites", source=args.source, split="train", **kw)
    path = J.judge_path(train.fingerprint)
    if path.is_file() and not args.force:
        judge = J.load_judge(train.fingerprint, device)
        print(f"reusing the stored judge {path}")
    else:
        cfg = J.JudgeConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed)
        judge = J.train_judge(train, config=cfg, device=device)
        print(f"stored the judge at {path}")
    test = get("sprites", source=train.source, split="test", **kw)
    for name, ds in (("train", train), ("test", test)):
        acc = J.judge_real_accuracy(judge, ds, device=device)
        print(f"{name} accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    return 0
