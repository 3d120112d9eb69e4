"""``disbench datasets list | info NAME | prepare NAME [--source S] | import NAME DIR``.

Thin: every dataset is a registry entry (:class:`disbench.datasets.contract.DatasetEntry`),
so each action is one call on ``datasets.spec(name)``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "datasets", help="list, inspect, download, render or import datasets",
        description=(
            "Manage datasets. Official files are downloaded from their published address, "
            "verified by checksum and cached under $DISBENCH_DATA (default ~/.cache/disbench); "
            "procedural twins (--source synthetic) need no network."
        ),
    )
    sub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="all datasets, their factors and what is cached",
                        description="List every registered dataset: its kind, its factors "
                                    "(or labels), which official splits and which twin "
                                    "splits are in the cache, and a summary.")
    ls.set_defaults(func=_list)

    info = sub.add_parser("info", help="details of one dataset",
                          description="Show a dataset's description: splits, files, "
                                      "checksums, URLs, cache folder, twin.")
    info.add_argument("name", help="dataset name (see 'disbench datasets list')")
    info.set_defaults(func=_info)

    prep = sub.add_parser(
        "prepare", help="download + verify the official files, or render the twin",
        description="--source official downloads the published files (progress bar), "
                    "verifies their checksums and caches them; --source synthetic renders "
                    "the procedural twin into the cache.")
    prep.add_argument("name", help="dataset name")
    prep.add_argument("--source", choices=("official", "synthetic"), default="official",
                      help="official files or procedural twin (default: official)")
    prep.add_argument("--split", default=None,
                      help="only this split (default: every split)")
    prep.set_defaults(func=_prepare)

    imp = sub.add_parser(
        "import", help="copy and verify official files you already have",
        description="Copy whichever official files of NAME the folder DIR holds into the "
                    "cache, verifying each checksum, and say which splits are now "
                    "available. Files must keep their official names.")
    imp.add_argument("name", help="dataset name")
    imp.add_argument("dir", type=Path, help="folder holding some of the official files")
    imp.set_defaults(func=_import)
    _register_show(sub)


def _register_show(sub: Any) -> None:
    show = sub.add_parser(
        "show", help="a picture of samples and of each factor varied alone (PNG or GIF)",
        description="Draw random samples and one row per factor that varies that factor "
                    "with the others fixed (labelled sets: a row per class), as PNG, or as "
                    "a GIF that animates each row; compare the official data with its twin.")
    show.add_argument("name", help="dataset name")
    show.add_argument("--source", choices=("auto", "official", "synthetic"), default="auto",
                      help="official files, procedural twin, or auto (default)")
    show.add_argument("--split", default=None, help="split (default: the dataset's own)")
    show.add_argument("--out", required=True, type=Path, metavar="FILE",
                      help="picture to write: FILE.png or FILE.gif")
    show.add_argument("--samples", type=int, default=16, help="random samples shown (16)")
    show.add_argument("--seed", type=int, default=0, help="which samples and base factors (0)")
    show.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    del args  # no options
    from disbench import datasets

    rows = []
    for name in datasets.names():
        d = datasets.spec(name).describe()
        factors = " ".join(f"{k}={v}" for k, v in d["factors"].items()) or "(labels)"
        rows.append((name, d["kind"], ",".join(d["official_cached"]) or "none",
                     ",".join(d["twin_cached"]) or "none", factors, d["summary"]))
    header = ("name", "kind", "official cached", "twin cached", "factors", "summary")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    return 0


def _print_value(key: str, value: Any, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        print(f"{pad}{key}:" + ("" if value else " (none)"))
        for k, v in value.items():
            _print_value(str(k), v, indent + 1)
    elif isinstance(value, (list, tuple)):
        print(f"{pad}{key}: {', '.join(map(str, value)) if value else '(none)'}")
    else:
        print(f"{pad}{key}: {value if value != '' else '-'}")


def _info(args: argparse.Namespace) -> int:
    from disbench import datasets

    for k, v in datasets.spec(args.name).describe().items():
        _print_value(k.replace("_", " "), v)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from disbench import datasets

    cls = datasets.spec(args.name)
    paths = cls.prepare(args.source, split=args.split)
    what = "rendered the synthetic twin" if args.source == "synthetic" else \
        "downloaded and verified the official files"
    print(f"{args.name}: {what}")
    for p in paths:
        print(f"  {p}")
    if args.source == "official":
        _print_pins(cls)
        cached = cls.available_splits()
        print(f"official splits available: {', '.join(cached) if cached else 'none'}")
    return 0


def _print_pins(cls: Any) -> None:
    """The SHA-256 seen of every file without a published checksum, so a user can pin it."""
    from disbench.datasets.download import pin_path, pinned_sha256

    for f in cls.files:
        sha = pinned_sha256(f, cls.files_folder())
        if sha is not None:
            print(f"  {f.name}: sha256 {sha} (no published checksum; pinned in "
                  f"{pin_path(cls.files_folder(), f)})")


def _import(args: argparse.Namespace) -> int:
    from disbench import datasets

    cls = datasets.spec(args.name)
    result = cls.import_dir(args.dir)
    print(f"{args.name}: imported and verified {len(result.imported)} file(s) from {args.dir}")
    for name in result.imported:
        print(f"  {name}")
    _print_pins(cls)
    print(f"official splits available: {', '.join(result.splits) if result.splits else 'none'}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from disbench import datasets
    from disbench.report.dataset_pictures import write_dataset_picture

    data = datasets.get(args.name, source=args.source, split=args.split)
    title = f"{args.name} ({data.source}, {data.split})"
    path = write_dataset_picture(data, datasets.spec(args.name).kind, args.out, title=title,
                                 n_samples=args.samples, seed=args.seed)
    print(f"{args.name}: wrote {path}")
    return 0
