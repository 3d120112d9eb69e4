"""``disbench datasets list | info NAME | prepare NAME [--source S] | import NAME DIR``."""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from disbench.errors import DisbenchError

# The seven datasets of the design, listed even when a module is not installed/registered.
KNOWN = {
    "dsprites": "dSprites: 737,280 binary 64x64 2D shapes, 5 factors (Matthey et al. 2017)",
    "shapes3d": "3D Shapes: 480,000 RGB 64x64 scenes, 6 factors (Burgess & Kim 2018)",
    "sprites": "Sprites: 64x64 RGB videos of LPC characters, static and action factors "
               "(Li & Mandt 2018)",
    "mnist": "handwritten digits, 1x28x28, train 60k / test 10k (LeCun et al. 1998)",
    "fashion_mnist": "Zalando clothing, 1x28x28, train 60k / test 10k (Xiao et al. 2017)",
    "omniglot": "1,623 handwritten characters of 50 alphabets, 105x105 binary "
                "(Lake et al. 2015)",
    "celeba": "202,599 aligned celebrity faces with 40 attributes (Liu et al. 2015)",
}


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
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="all datasets, whether available and what is cached",
                        description="List the datasets: registered or not, a summary, and "
                                    "which official splits are in the cache.")
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
                      help="only this split (datasets with splits; default: all official "
                           "files, or the default split of the twin)")
    prep.set_defaults(func=_prepare)

    imp = sub.add_parser(
        "import", help="copy and verify official files you already have",
        description="Copy whichever official files of NAME the folder DIR holds into the "
                    "cache, verifying each checksum, and say which splits are now "
                    "available. Files must keep their official names.")
    imp.add_argument("name", help="dataset name")
    imp.add_argument("dir", type=Path, help="folder holding some of the official files")
    imp.set_defaults(func=_import)


def _registered(name: str) -> Any:
    from disbench import datasets

    if name in datasets.DATASETS:
        return datasets.DATASETS[name]
    if name in KNOWN:
        raise DisbenchError(f"dataset {name!r} is part of disbench but not available in this "
                            f"install yet (its module is not registered)")
    return datasets.spec(name)  # raises, listing the valid names


def _cached_splits(cls: Any) -> list[str]:
    try:
        if hasattr(cls, "available_splits"):
            return list(cls.available_splits())
        return [cls.default_split] if cls.official_available(cls.default_split) else []
    except DisbenchError:
        return []


def _list(args: argparse.Namespace) -> int:
    from disbench import datasets

    names = list(KNOWN) + sorted(set(datasets.names()) - set(KNOWN))
    rows = []
    for name in names:
        cls = datasets.DATASETS.get(name)
        if cls is None:
            rows.append((name, "no", "-", KNOWN[name] + " [not registered yet]"))
            continue
        cached = _cached_splits(cls)
        rows.append((name, "yes", ",".join(cached) if cached else "none",
                     getattr(cls, "summary", "") or KNOWN.get(name, "")))
    header = ("name", "registered", "official cached", "summary")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for r in [header, *rows]:
        print("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return 0


def _print_value(key: str, value: Any, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        print(f"{pad}{key}:")
        for k, v in value.items():
            _print_value(str(k), v, indent + 1)
    elif isinstance(value, (list, tuple)):
        print(f"{pad}{key}: {', '.join(map(str, value)) if value else '(none)'}")
    else:
        print(f"{pad}{key}: {value}")


def _info(args: argparse.Namespace) -> int:
    cls = _registered(args.name)
    for k, v in cls.describe().items():
        _print_value(str(k), v)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    cls = _registered(args.name)
    kwargs: dict[str, Any] = {}
    if args.split is not None:
        if "split" not in inspect.signature(cls.prepare).parameters:
            raise DisbenchError(f"{args.name} has no --split option for prepare")
        kwargs["split"] = args.split
    out = cls.prepare(args.source, **kwargs)
    paths = out if isinstance(out, (list, tuple)) else [out] if out is not None else []
    what = "rendered the synthetic twin" if args.source == "synthetic" else \
        "downloaded and verified the official files"
    print(f"{args.name}: {what}")
    for p in paths:
        print(f"  {p}")
    if args.source == "official":
        cached = _cached_splits(cls)
        print(f"official splits available: {', '.join(cached) if cached else 'none'}")
    return 0


def _import(args: argparse.Namespace) -> int:
    cls = _registered(args.name)
    if not args.dir.is_dir():
        raise DisbenchError(f"{args.dir} is not a folder")
    out = cls.import_dir(args.dir)
    imported = out.get("imported") if isinstance(out, dict) else \
        [Path(p).name for p in (out or [])]
    print(f"{args.name}: imported and verified {len(imported)} file(s) from {args.dir}")
    for name in imported:
        print(f"  {name}")
    cached = out.get("splits") if isinstance(out, dict) else _cached_splits(cls)
    print(f"official splits available: {', '.join(cached) if cached else 'none'}")
    return 0
