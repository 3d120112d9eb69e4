"""Settings declared once: dataclass fields whose metadata says everything about them.

A run setting is one field of :class:`disbench.run.config.RunConfig`, made with
:func:`setting`. Its metadata is the single place that says

``check``
    the validator, ``value -> problem or None`` (used by ``RunConfig`` itself and by the
    ``train:`` section of a sweep spec, so both give the same message);
``hashed``
    whether it is part of the run id (``device``, ``log_every`` and ``checkpoint_every`` do
    not change what is learned); ``"if_set"``: only when it differs from its default (a
    setting that only some models use, added without changing the ids of existing runs);
``group``
    whether runs must agree on it to train together as one batched ensemble;
``variant``
    whether a difference in it makes a separate leaderboard variant (and so a label part);
``train``
    whether it is a key of a spec's ``train:`` section (``"required"``: a required one);
``flag``
    the ``disbench train`` flag (``None``: none of its own); ``help`` its help text.

:func:`add_flags` turns such fields, and the fields of
:class:`disbench.metrics.evaluators.EvalOptions` (metadata ``help``, ``choices``), into
argparse flags; :func:`defer_flags` adds them only when the subcommand is used, so that
``disbench --help`` does not import torch.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

Check = Callable[[Any], "str | None"]


def setting(default: Any = dataclasses.MISSING, *, help: str, check: Check | None = None,
            choices: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
            hashed: bool | str = True, group: bool = True, variant: bool = False,
            train: bool | str = False, flag: str | None = None, flag_type: Any = None,
            metavar: str | None = None, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying the metadata described in the module docstring.

    ``choices`` (a sequence, or a callable returning one, read when first needed) gives
    the validator :func:`one_of` unless ``check`` is given, and the flag's choices.
    """
    if check is None:
        if choices is None:
            raise TypeError("setting() needs check= or choices=")
        check = one_of(choices)
    meta = {"check": check, "help": help, "hashed": hashed, "group": group,
            "variant": variant, "train": train, "flag": flag, "flag_type": flag_type,
            "choices": choices, "metavar": metavar}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def names_where(cls: type, key: str, value: Any = True) -> tuple[str, ...]:
    """The fields of ``cls`` whose metadata ``key`` is truthy (or equals ``value``)."""
    return tuple(f.name for f in dataclasses.fields(cls)
                 if (bool(f.metadata.get(key)) if value is True else f.metadata.get(key) == value))


def check_value(cls: type, name: str, value: Any) -> str | None:
    """The problem with ``value`` for field ``name`` of ``cls`` (None when it is valid)."""
    return {f.name: f for f in dataclasses.fields(cls)}[name].metadata["check"](value)


# -- validators (each returns the problem as "must be ..., got ...", or None) ---------------
def positive_int(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        return f"must be a positive integer, got {v!r}"
    return None


def non_negative_int(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        return f"must be a non-negative integer, got {v!r}"
    return None


def integer(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return f"must be an integer, got {v!r}"
    return None


def positive_number_or_none(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
        return f"must be a finite positive number (or null for the model's default), got {v!r}"
    return None


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def nonempty_str(v: Any) -> str | None:
    return None if isinstance(v, str) and v else f"must be a non-empty string, got {v!r}"


def nonempty_str_or_none(v: Any) -> str | None:
    return None if v is None else nonempty_str(v)


def mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"must be a mapping, got {v!r}"


def choices_of(choices: Iterable[Any] | Callable[[], Iterable[Any]]) -> tuple[Any, ...]:
    """The values of a ``choices`` declaration (a sequence, or a callable returning one)."""
    return tuple(choices() if callable(choices) else choices)


def one_of(choices: Iterable[Any] | Callable[[], Iterable[Any]]) -> Check:
    """A validator accepting the values of ``choices`` (see :func:`choices_of`)."""
    def check(v: Any) -> str | None:
        allowed = choices_of(choices)
        if v in allowed and not isinstance(v, bool):
            return None
        shown = ", ".join("null" if c is None else str(c) for c in allowed)
        return f"must be one of {shown}, got {v!r}"
    return check


# -- command-line flags ----------------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, cls: type, names: Iterable[str] | None = None,
              *, defaults_none: bool = False) -> None:
    """Add one flag per field of ``cls`` (``names``: those only, in this order).

    The flag is the field's ``flag`` metadata or ``--field-name``; its help, choices and
    metavar come from the metadata and its type from the default. A boolean field with
    default False is a switch; a field without a default is a required flag. ``defaults_none``: every default is None (the caller fills
    the real defaults, e.g. ``EvalOptions.build`` ignores None).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for fname in (names if names is not None else fields):
        f = fields[fname]
        meta = f.metadata
        flag = meta.get("flag") or "--" + fname.replace("_", "-")
        required = (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                    and not defaults_none)
        default = None if defaults_none or f.default is dataclasses.MISSING else f.default
        kw: dict[str, Any] = {"dest": fname, "help": meta.get("help", ""), "default": default}
        if required:
            kw["required"] = True
        if f.default is False and not defaults_none:
            parser.add_argument(flag, action="store_true", **kw)
            continue
        choices = meta.get("choices")
        if choices is not None:
            kw["choices"] = [c for c in choices_of(choices) if c is not None]
        kw["type"] = meta.get("flag_type") or _type_of(f)
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        parser.add_argument(flag, **kw)


def _type_of(f: dataclasses.Field) -> Any:
    if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
        return type(f.default)
    return str


class _DeferredFlags(argparse.ArgumentParser):
    """A subcommand parser that adds some of its flags only when it is parsed or shown."""

    _add_later: Callable[[argparse.ArgumentParser], None] | None = None

    def _complete(self) -> None:
        add, self._add_later = self._add_later, None
        if add is not None:
            add(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()


def defer_flags(parser: argparse.ArgumentParser,
                add: Callable[[argparse.ArgumentParser], None]) -> None:
    """Call ``add(parser)`` when ``parser`` is first parsed or its help is shown.

    The flags of ``disbench train`` and ``disbench evaluate`` come from dataclasses whose
    modules import datasets and torch; deferring keeps ``disbench --help`` fast.
    """
    # argparse builds subparsers itself; switching the class adds the two hooks only.
    parser.__class__ = _DeferredFlags
    parser._add_later = add
