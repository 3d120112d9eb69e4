"""Sweep specs: a YAML file naming datasets, model variants, training settings, seeds and metrics.

A spec looks like::

    name: tiny
    datasets: [{name: dsprites, source: synthetic}]
    models: [{name: vae}, {name: beta_vae, beta: [2, 4]}]
    train: {steps: 30, batch_size: 16}
    seeds: [0, 1]
    metrics: [mig, dci, sap]
    eval: {num_train: 1000, num_test: 500}      # optional

Rules
-----
- A list value is swept: every model entry expands into the product of its list-valued
  hyperparameters, and the runs are the product datasets x model variants x train
  variants x seeds. A hyperparameter whose value really is a list is written as a list
  of one list (``variances: [[1, 2, 3]]``).
- ``datasets`` entries are a name or ``{name, source, split, options}`` (source defaults
  to ``auto``; ``options``: the dataset's load options, e.g. ``{size: 28}``, as
  ``disbench datasets info NAME`` lists them); list values there are swept too.
- ``train`` keys: the training settings of :class:`disbench.run.config.RunConfig`
  (:data:`~disbench.run.config.TRAIN_FIELDS`: ``steps`` (required), ``batch_size``,
  ``lr``, ``log_every``, ``amp``, ``compile``, ``device``, ``checkpoint_every``, ``pair_k``,
  ``num_labelled``, ``labeller``, ``eval_every``, ``eval_metrics``, ``eval_points``), each
  checked by its field's own validator.
- A float hyperparameter may be a schedule, e.g. ``beta: "linear(0, 4, 10000)"``
  (:mod:`disbench.baselines.schedules`; quote it inside a ``[...]`` list). A model entry may carry its own ``train``
  mapping (same keys, no lists) that overrides the global one for that model, e.g.
  ``{name: gwae, train: {lr: 0.0001}}``.
- ``eval`` keys: the fields of :class:`disbench.metrics.evaluators.EvalOptions`
  (``num_train``, ``num_test``, ``codes``, ``random_state``, ``batch_size``, ``device``),
  checked by it.
- ``max_runs`` (optional, default :data:`MAX_RUNS`): the most runs the spec may expand to.
  The product is counted before anything is expanded, so a spec of millions of runs is an
  error naming each section's share, not a hang; raise it on purpose for a bigger sweep.
- Numbers: the YAML 1.2 float syntax is read as a float (``lr: 1e-4``, ``beta: 1e-3``;
  YAML 1.1, PyYAML's default, reads those as strings); :func:`read_yaml` is the one reader
  of specs and of ``disbench train --set`` values.
- Every metric runs on every dataset of the spec, so a pair that cannot work is refused
  before any training: an evaluator's dataset needs (``disbench.metrics.needs(name)``:
  ground-truth factors, labels, sequences, an OoD partner) must be among what the
  dataset offers, as :mod:`disbench.run.needs` (the one owner of that pairing, which
  ``disbench evaluate`` checks too) says; the error names the metric's key and line and
  the dataset. (A labelled set is not offered as a one-factor ground truth; put such
  datasets in a spec of their own with the metrics they support.) What a metric needs of
  the *model* (a decoder, a sequence model) is not checked here.
- A key given twice in one mapping is an error naming both lines (YAML would silently keep
  the last). Aliases are walked once each, and a text whose aliases expand to more than
  :data:`MAX_VALUES` values (a "billion laughs" bomb) is refused before it is built.
- ``sizes`` (optional): named smaller protocols of the same suite, e.g.
  ``sizes: {cpu: {datasets: [...], train: {steps: 500, device: cpu}, seeds: [0, 1]}}``.
  The top level is the full protocol; a size overrides the top-level keys it gives
  (:data:`SIZE_KEYS`): ``train`` and ``eval`` merge key by key into the top level's, the
  others replace it. ``load_spec(path, size="cpu")`` returns that size (named
  ``<name>-<size>``); every size is validated whichever is loaded, and its errors name the
  key under ``sizes`` (``sizes.cpu.train.steps``) and its line.
- A malformed spec raises :class:`~disbench.errors.DisbenchError` naming the file, the
  key path (``models[1].beta``) and the line.
"""
from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from disbench.errors import DisbenchError
from disbench.run.config import TRAIN_FIELDS, TRAIN_REQUIRED, RunConfig
from disbench.run.settings import check_value

TOP_KEYS = ("name", "description", "datasets", "models", "train", "seeds", "metrics", "eval",
            "claims", "max_runs", "sizes")
#: the default bound on the runs of one spec (the spec's ``max_runs:`` raises it)
MAX_RUNS = 10_000
#: the most values (scalars, lists, mappings) a YAML text may hold once its aliases are
#: expanded; specs hold hundreds, an alias bomb billions
MAX_VALUES = 100_000
#: the top-level keys a ``sizes:`` entry may override; :data:`MERGED_KEYS` merge key by key
SIZE_KEYS = ("description", "datasets", "models", "train", "seeds", "metrics", "eval",
             "max_runs")
MERGED_KEYS = ("train", "eval")
REQUIRED_TOP = ("datasets", "models", "train", "metrics")
#: the keys of a ``datasets`` entry: RunConfig fields, checked by their validators
DATASET_KEYS = ("name", "source", "split", "options")


@dataclass
class Spec:
    """A parsed, validated sweep spec.

    Attributes
    ----------
    name : str
        The spec's name (defaults to the file stem).
    datasets : list of dict
        Expanded dataset entries ``{"name", "source", "split"}``.
    models : list of dict
        Expanded model variants ``{"name": str, "hparams": dict}``.
    train : list of dict
        Expanded training settings (one dict per train variant).
    seeds : list of int
    metrics : list of str
        Evaluator names for :func:`disbench.metrics.evaluate`.
    eval : dict
        Keyword options for :func:`disbench.metrics.evaluate`.
    path : Path or None
        The file the spec came from.
    """

    name: str
    datasets: list[dict[str, Any]]
    models: list[dict[str, Any]]
    train: list[dict[str, Any]]
    seeds: list[int]
    metrics: list[str]
    eval: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None
    #: the paper's findings this suite checks (:mod:`disbench.sweeps.claims`)
    claims: list[Any] = field(default_factory=list)
    #: the size this spec is (None: the full protocol) and the sizes its file defines
    size: str | None = None
    sizes: tuple[str, ...] = ()

    def run_dicts(self) -> list[dict[str, Any]]:
        """The runs as keyword dicts for :class:`disbench.run.config.RunConfig`, in a fixed order."""
        runs = []
        for ds, model, train, seed in itertools.product(
            self.datasets, self.models, self.train, self.seeds
        ):
            kw = {
                "model": model["name"],
                "hparams": dict(model["hparams"]),
                "dataset": ds["name"],
                "source": ds["source"],
                "split": ds["split"],
                "seed": seed,
            }
            if ds.get("options") is not None:
                kw["dataset_options"] = dict(ds["options"])
            kw.update(train)
            kw.update(model.get("train", {}))
            runs.append(kw)
        return runs

    def run_configs(self) -> list[Any]:
        """The runs as :class:`disbench.run.config.RunConfig` objects (datasets x models x seeds).

        Each config is resolved once (model defaults filled, hyperparameter values checked by
        the model), so a bad value fails here naming the spec entry, before any training.
        """
        from disbench.run.config import RunConfig

        out = []
        for kw, where in zip(self.run_dicts(), self._wheres(), strict=True):
            try:
                cfg = RunConfig(**kw)
                cfg.run_id()
            except DisbenchError as exc:
                raise DisbenchError(f"{where}: {exc}") from None
            out.append(cfg)
        return out

    def run_dirs(self, runs_root: str | os.PathLike) -> set[Path]:
        """The run folders this spec's sweep writes under ``runs_root``."""
        return {Path(cfg.run_dir(runs_root)) for cfg in self.run_configs()}

    def _wheres(self) -> list[str]:
        return [
            model.get("where", f"model {model['name']}")
            for _, model, _, _ in itertools.product(
                self.datasets, self.models, self.train, self.seeds
            )
        ]


# --------------------------------------------------------------------------- loading


def load_spec(path: str | os.PathLike, size: str | None = None) -> Spec:
    """Read and validate a sweep spec from a YAML file.

    ``size``: one of the file's ``sizes:`` (None: the full protocol, the top level).

    Raises
    ------
    DisbenchError
        When the file is missing, is not valid YAML, or a key is missing or malformed;
        the message names the file, the key and (where YAML gives one) the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DisbenchError(f"sweep spec {path} not found; pass the path of a YAML spec file")
    return parse_spec(path.read_text(), source=str(path), default_name=path.stem, path=path,
                      size=size)


def parse_spec(
    text: str,
    *,
    source: str = "<spec>",
    default_name: str = "sweep",
    path: Path | None = None,
    size: str | None = None,
) -> Spec:
    """Parse and validate spec text (see the module docstring for the format)."""
    data, lines = read_yaml(text, source)
    return _Validator(source, lines).sized_spec(data, default_name, path, size)


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading the YAML 1.2 float forms ``1e-4``, ``1E+3`` as floats.

    YAML 1.1 (PyYAML's rules) needs a dot in a float, so ``1e-4`` would be the string
    ``"1e-4"``; the resolver below is the YAML 1.1 float pattern with the dot optional
    when an exponent follows (integers such as ``10`` still resolve as integers first).
    """


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


def read_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """``(data, lines)`` of a YAML document: the value and the line of each key path.

    One parse (:class:`SpecLoader`); the node tree is checked before any Python value is
    built: duplicate keys are an error naming both lines, and a text whose aliases expand
    to more than :data:`MAX_VALUES` values is refused (each aliased node is walked once).
    """
    loader = SpecLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise DisbenchError(f"{source}:{where}: not valid YAML: {problem}") from None
        except RecursionError:
            raise DisbenchError(f"{source}: nested too deeply to be a spec") from None
        if node is None:
            return None, {}
        walk = _NodeWalk(source)
        walk.visit(node, ())
        size = walk.size(node)
        if size > MAX_VALUES:
            raise DisbenchError(
                f"{source}: its YAML aliases expand to more than {MAX_VALUES} values (an alias "
                "bomb?); write the values out or use fewer nested aliases")
        return loader.construct_document(node), walk.lines
    finally:
        loader.dispose()


class _NodeWalk:
    """One pass over a composed YAML node tree: lines of key paths, duplicate keys, size."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple, int] = {}
        self._seen: set[int] = set()
        self._sizes: dict[int, int] = {}

    def visit(self, node: Any, path: tuple) -> None:
        """Record the line of ``path`` and of every key below it (aliases once)."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.visit(value_node, path)
                    continue
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                line = key_node.start_mark.line + 1
                sub = path + (key,)
                if key in first:
                    raise DisbenchError(
                        f"{self.source}: key '{_fmt_path(sub)}' is given twice (lines "
                        f"{first[key]} and {line}); keep one")
                first[key] = line
                self.lines[sub] = line
                self.visit(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.visit(item, path + (i,))

    def size(self, node: Any) -> int:
        """Values in ``node`` with aliases expanded (computed once per node; capped)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        self._sizes[id(node)] = MAX_VALUES + 1  # a cycle counts as too big
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1
        for child in children:
            total = min(total + self.size(child), MAX_VALUES + 1)
        self._sizes[id(node)] = total
        return total


def _fmt_path(path: tuple) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "<top level>"


class _Validator:
    """Checks one spec, raising a DisbenchError that names key path and line."""

    def __init__(self, source: str, lines: dict[tuple, int],
                 aliases: dict[tuple, tuple] | None = None, size: str | None = None):
        self.source = source
        self.lines = lines
        #: key path prefix -> where it is written (a size's overrides live under ``sizes``)
        self.aliases = aliases or {}
        #: the size being checked: its claims may name a metric it does not compute
        #: (checked against the full protocol; the claim is "not run" at that size)
        self.size = size

    def where(self, path: tuple) -> str:
        """``key 'a.b[0]' (line N)`` of ``path``, where the file writes it."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.aliases:
                path = self.aliases[path[:n]] + path[n:]
                break
        line = None
        for n in range(len(path), -1, -1):  # nearest enclosing key that YAML placed
            line = self.lines.get(path[:n])
            if line is not None:
                break
        return f"key '{_fmt_path(path)}'" + (f" (line {line})" if line is not None else "")

    def fail(self, path: tuple, msg: str) -> None:
        raise DisbenchError(f"{self.source}: {self.where(path)}: {msg}")

    # -- sizes
    def sized_spec(self, data: Any, default_name: str, path: Path | None,
                   size: str | None) -> Spec:
        """The full protocol (``size`` None) or one of ``sizes:``; every size is checked."""
        full = self.spec(data, default_name, path)
        sizes = self.sizes(data.get("sizes"))
        specs = {}
        for name, entry in sizes.items():
            merged, aliases = _merge_size(data, entry, name)
            spec = _Validator(self.source, self.lines, aliases, name).spec(merged, default_name,
                                                                            path)
            spec.name, spec.size = f"{spec.name}-{name}", name
            specs[name] = spec
        for spec in (full, *specs.values()):
            spec.sizes = tuple(sizes)
        if size is None:
            return full
        if size not in specs:
            have = f"its sizes are {', '.join(sizes)}" if sizes else "it has no 'sizes:'"
            raise DisbenchError(f"{self.source}: no size {size!r}; {have} (omit --size for "
                                "the full protocol)")
        return specs[size]

    def sizes(self, value: Any) -> dict[str, dict[str, Any]]:
        if value is None:
            return {}
        key = ("sizes",)
        if not isinstance(value, dict) or not value:
            self.fail(key, "must be a mapping of size names to overrides, e.g. "
                      "{cpu: {train: {steps: 500, device: cpu}}}")
        for name, entry in value.items():
            if not isinstance(name, str) or not name.isidentifier():
                self.fail(key + (name,), "a size name must be a word (letters, digits, _)")
            if not isinstance(entry, dict) or not entry:
                self.fail(key + (name,), "must be a non-empty mapping of overrides of "
                          + ", ".join(SIZE_KEYS))
            for k in entry:
                if k not in SIZE_KEYS:
                    self.fail(key + (name, k), "a size may override only "
                              + ", ".join(SIZE_KEYS))
            for k in MERGED_KEYS:
                if k in entry and not isinstance(entry[k], dict):
                    self.fail(key + (name, k), "must be a mapping (merged into the top "
                              f"level's {k!r})")
        return value

    # -- top level
    def spec(self, data: Any, default_name: str, path: Path | None) -> Spec:
        if not isinstance(data, dict):
            self.fail((), "a spec must be a YAML mapping with keys " + ", ".join(TOP_KEYS))
        for key in data:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key; valid keys are {', '.join(TOP_KEYS)}")
        for key in REQUIRED_TOP:
            if key not in data:
                self.fail((key,), "missing required key")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name:
            self.fail(("name",), "must be a non-empty string")
        description = data.get("description", "")
        if not isinstance(description, str):
            self.fail(("description",), "must be a string")
        self.check_size(data)
        spec = Spec(
            name=name,
            datasets=self.datasets(data["datasets"]),
            models=self.models(data["models"]),
            train=self.train(data["train"]),
            seeds=self.seeds(data.get("seeds", [0])),
            metrics=self.metrics(data["metrics"]),
            eval=self.eval(data.get("eval") or {}),
            description=description,
            path=path,
        )
        if "claims" in data:
            spec.claims = self.claims(data["claims"], spec)
        self.check_pairs(spec.datasets, spec.metrics)
        return spec

    def claims(self, value: Any, spec: Spec) -> list[Any]:
        """Parse ``claims:`` and check each names a metric, variants and a dataset of the spec."""
        from disbench.metrics.registry import EVALUATORS
        from disbench.sweeps.claims import parse_claims

        claims = parse_claims(value, lambda p, m: self.fail(("claims", *p), m))
        records = {r for m in spec.metrics for r in EVALUATORS[m].record_names}
        names = {d["name"] for d in spec.datasets}
        for i, c in enumerate(claims):
            key = ("claims", i)
            for k, metric in (("metric", c.metric), ("matched", (c.matched or {}).get("metric"))):
                if metric is not None and metric not in records and self.size is None:
                    self.fail(key + (k,), f"{metric!r} is not a score of this suite's metrics "
                              f"({', '.join(spec.metrics)}); it records {', '.join(sorted(records))}")
            if c.dataset is not None and c.dataset not in names:
                self.fail(key + ("dataset",), f"dataset {c.dataset!r} is not in this suite")
            for side in ("better", "than"):
                self._check_claim_variant(getattr(c, side), spec, key + (side,))
        return claims

    def _check_claim_variant(self, sel: dict[str, Any], spec: Spec, key: tuple) -> None:
        variants = [m for m in spec.models if m["name"] == sel["model"]]
        if not variants:
            self.fail(key + ("model",), f"model {sel['model']!r} is not in this suite")
        valid = _hparam_names(sel["model"]) | set(TRAIN_FIELDS)
        for k, v in sel.items():
            if k != "model" and k not in valid:
                self.fail(key + (k,), f"{k!r} is neither a hyperparameter of {sel['model']} nor "
                          "a training setting")
        from disbench.sweeps.claims import same_value

        for k, v in sel.items():
            given = [m["hparams"][k] for m in variants if k in m["hparams"]]
            if given and not any(same_value(g, v) for g in given):
                self.fail(key + (k,), f"no {sel['model']} variant of this suite has {k}={v!r} "
                          f"(it has {', '.join(map(repr, given))})")
    def check_pairs(self, datasets: list[dict[str, Any]], metrics: list[str]) -> None:
        """Refuse a metric whose dataset needs a dataset of the spec cannot meet
        (:func:`disbench.run.needs.unmet`)."""
        from disbench.run.needs import unmet

        for name in dict.fromkeys(d["name"] for d in datasets):
            for i, metric in enumerate(metrics):
                why = unmet(name, metric)
                if why is not None:
                    self.fail(("metrics", i), f"{why}; drop the metric or the dataset (every "
                              "metric runs on every dataset of a spec: give them separate "
                              "specs)")

    def check_size(self, data: dict[str, Any]) -> None:
        """Refuse a spec of more than ``max_runs`` runs, counted before anything is expanded."""
        limit = data.get("max_runs", MAX_RUNS)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self.fail(("max_runs",), f"must be a positive integer, got {limit!r}")
        seeds = data.get("seeds", [0])
        counts = {
            "datasets": _variants(data["datasets"]),
            "models": _variants(data["models"]),
            "train": _variants([data["train"]]),
            "seeds": len(seeds) if isinstance(seeds, list) else 1,
        }
        total = math.prod(counts.values())
        if total > limit:
            biggest = max(counts, key=lambda k: counts[k])
            parts = " x ".join(f"{n} {k}" for k, n in counts.items())
            self.fail((biggest,), f"the spec expands to {total} runs ({parts}), more than "
                      f"max_runs {limit}; sweep fewer values, or set max_runs: {total} at "
                      "the top of the spec if you mean it")

    def _nonempty_list(self, value: Any, key: tuple) -> list:
        if not isinstance(value, list) or not value:
            self.fail(key, "must be a non-empty list")
        return value

    # -- sections
    def datasets(self, value: Any) -> list[dict[str, Any]]:
        out = []
        for i, entry in enumerate(self._nonempty_list(value, ("datasets",))):
            key = ("datasets", i)
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, dict):
                self.fail(key, "must be a dataset name or a mapping {name, source, split}")
            for k in entry:
                if k not in DATASET_KEYS:
                    self.fail(key + (k,), f"unknown key; valid keys are {', '.join(DATASET_KEYS)}")
            if "name" not in entry:
                self.fail(key + ("name",), "missing required key")
            entry = {"source": "auto", "split": None, **entry}
            for variant in self._expand(entry, key):
                if not isinstance(variant["name"], str):
                    self.fail(key + ("name",), "must be a dataset name")
                self._check_dataset_name(variant["name"], key + ("name",))
                for k, field_name in (("source", "source"), ("split", "split")):
                    problem = check_value(RunConfig, field_name, variant[k])
                    if problem:
                        self.fail(key + (k,), problem)
                self._check_dataset_options(variant, key + ("options",))
                out.append(variant)
        return out

    def models(self, value: Any) -> list[dict[str, Any]]:
        out = []
        for i, entry in enumerate(self._nonempty_list(value, ("models",))):
            key = ("models", i)
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, dict):
                self.fail(key, "must be a mapping {name: MODEL, hyperparameter: value, ...}")
            if "name" not in entry:
                self.fail(key + ("name",), "missing required key")
            if not isinstance(entry["name"], str):
                self.fail(key + ("name",), "must be a model name (a string; not swept)")
            self._check_model_name(entry["name"], key + ("name",))
            entry = dict(entry)
            overrides = self.train_overrides(entry.pop("train", {}), key + ("train",))
            valid = _hparam_names(entry["name"])
            for k, v in entry.items():
                if k != "name" and k not in valid:
                    self.fail(key + (k,), f"unknown hyperparameter of {entry['name']}; valid "
                              f"ones are {', '.join(sorted(valid))}")
                self._check_value(v, key + (k,))
            where = f"{self.source}: {self.where(key)}"
            for variant in self._expand(entry, key):
                name = variant.pop("name")
                out.append({"name": name, "hparams": variant, "train": overrides,
                            "where": where})
        return out

    def train(self, value: Any) -> list[dict[str, Any]]:
        key = ("train",)
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping, e.g. {steps: 1000, batch_size: 64}")
        for k in TRAIN_REQUIRED:
            if k not in value:
                self.fail(key + (k,), "missing required key")
        variants = self._expand(value, key)
        for variant in variants:
            self._check_train(variant, key)
        return variants

    def train_overrides(self, value: Any, key: tuple) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping of training settings, e.g. {lr: 0.0001}")
        for k, v in value.items():
            if isinstance(v, list):
                self.fail(key + (k,), "a per-model training setting is not swept; give one value")
        self._check_train(value, key)
        return dict(value)

    def _check_train(self, variant: dict[str, Any], key: tuple) -> None:
        for k, v in variant.items():
            if k not in TRAIN_FIELDS:
                self.fail(key + (k,), f"unknown key; valid keys are {', '.join(TRAIN_FIELDS)}")
            problem = check_value(RunConfig, k, v)
            if problem:
                self.fail(key + (k,), problem)

    def seeds(self, value: Any) -> list[int]:
        key = ("seeds",)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        value = self._nonempty_list(value, key)
        for i, s in enumerate(value):
            if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                self.fail(key + (i,), f"a seed must be a non-negative integer, got {s!r}")
        if len(set(value)) != len(value):
            self.fail(key, "seeds must be distinct")
        return list(value)

    def metrics(self, value: Any) -> list[str]:
        key = ("metrics",)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        value = self._nonempty_list(value, key)
        known = _known_metrics()
        for i, m in enumerate(value):
            if not isinstance(m, str):
                self.fail(key + (i,), f"a metric must be a name, got {m!r}")
            if m not in known:
                self.fail(key + (i,), f"unknown metric {m!r}; choose from {', '.join(known)}")
        if len(set(value)) != len(value):
            self.fail(key, "metrics must be distinct")
        return list(value)

    def eval(self, value: Any) -> dict[str, Any]:
        from disbench.metrics.evaluators import EvalOptions

        key = ("eval",)
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping, e.g. {num_train: 10000, num_test: 5000}")
        names = EvalOptions.names()
        for k, v in value.items():
            if k not in names:
                self.fail(key + (k,), f"unknown key; valid keys are {', '.join(names)}")
            try:
                EvalOptions.build({k: v})
            except DisbenchError as exc:
                self.fail(key + (k,), str(exc))
        return dict(value)

    # -- helpers
    def _check_value(self, v: Any, key: tuple) -> None:
        if isinstance(v, dict):
            self.fail(key, "a hyperparameter value must be a scalar or a list of scalars")
        if isinstance(v, list):
            if not v:
                self.fail(key, "an empty list sweeps over nothing; give at least one value")
            for item in v:
                if isinstance(item, dict):
                    self.fail(key, "a swept value must be a scalar (or a list for a list value)")

    def _expand(self, entry: dict[str, Any], key: tuple) -> list[dict[str, Any]]:
        """The product over the list-valued keys of ``entry`` (a list of one list is literal)."""
        keys = list(entry)
        choices = []
        for k in keys:
            v = entry[k]
            if isinstance(v, list):
                if not v:
                    self.fail(key + (k,), "an empty list sweeps over nothing")
                choices.append(v)
            else:
                choices.append([v])
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]

    def _check_dataset_options(self, entry: dict[str, Any], key: tuple) -> None:
        from disbench import datasets

        options = entry.get("options")
        if options is None:
            return
        if not isinstance(options, dict):
            self.fail(key, "must be a mapping of the dataset's load options, e.g. {size: 28}")
        valid = datasets.spec(entry["name"]).options
        for k in options:
            if k not in valid:
                self.fail(key + (k,), f"unknown option of {entry['name']}; valid options are "
                          f"{', '.join(valid) or 'none'}")

    def _check_dataset_name(self, name: str, key: tuple) -> None:
        from disbench import datasets

        known = datasets.names()
        if name not in known:
            self.fail(key, f"unknown dataset {name!r}; choose one of {', '.join(known)}")

    def _check_model_name(self, name: str, key: tuple) -> None:
        from disbench import baselines

        known = baselines.names()
        if name not in known:
            self.fail(key, f"unknown model {name!r}; choose one of {', '.join(known)}")


def _variants(entries: Any) -> int:
    """How many variants a section's entries expand to (the product of each entry's list
    lengths, summed over entries), computed without expanding; malformed entries count once
    (the validator names them afterwards)."""
    if not isinstance(entries, list):
        return 1
    total = 0
    for entry in entries:
        lists = [v for v in entry.values() if isinstance(v, list)] if isinstance(entry, dict) \
            else []
        total += math.prod(max(1, len(v)) for v in lists)
    return max(total, 1)


def _merge_size(data: dict[str, Any], entry: dict[str, Any], size: str
                ) -> tuple[dict[str, Any], dict[tuple, tuple]]:
    """The top level with the size's overrides, and where each overridden key is written."""
    merged = {k: v for k, v in data.items() if k != "sizes"}
    aliases: dict[tuple, tuple] = {}
    for k, v in entry.items():
        if k in MERGED_KEYS and isinstance(data.get(k), dict):
            merged[k] = {**data[k], **v}
            aliases.update({(k, sub): ("sizes", size, k, sub) for sub in v})
        else:
            merged[k] = v
            aliases[(k,)] = ("sizes", size, k)
    return merged, aliases


def _hparam_names(model: str) -> set[str]:
    """The hyperparameter names of a registered model (the fields of its ``Hparams``)."""
    import dataclasses

    from disbench import baselines

    return {f.name for f in dataclasses.fields(baselines.MODELS[model].Hparams)}


def _known_metrics() -> list[str]:
    """Registered evaluator names."""
    from disbench.metrics.evaluators import EVALUATORS

    return sorted(EVALUATORS)
