"""Run configurations: every run setting declared once, and the run id.

Each field of :class:`RunConfig` is a :func:`disbench.run.settings.setting` whose metadata
says how it is checked, whether it is hashed, whether ensemble members must agree on it,
whether it makes a leaderboard variant, whether it is a spec ``train:`` key and what its
``disbench train`` flag says. Everything else is derived from that declaration:
:data:`HASHED`, :data:`NOT_HASHED`, :data:`GROUP_FIELDS`, :data:`VARIANT_FIELDS`,
:data:`TRAIN_FIELDS`, spec validation (:mod:`disbench.sweeps.spec`), the leaderboard's
variant labels (:mod:`disbench.report.leaderboard`) and the flags (:mod:`disbench.cli.train`).
Adding a training setting is adding one field here (and using it in the trainer).

A run is identified by a short hash of its configuration with ``split``, ``lr`` and the
model hyperparameters resolved (defaults filled) and ``source`` *as requested*: ``auto``
stays ``auto``, so the id does not depend on what happens to be in the dataset cache. The
source ``auto`` resolves to is decided once, when the run folder is created, and stored in
its ``config.json`` (:mod:`disbench.run.folder`) for the life of the run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disbench.errors import DEVICES, DisbenchError
from disbench.run import settings as S

AMP_MODES = (None, "bf16")
#: hyperparameters filled from the dataset at training time unless the user sets them (the
#: likelihood too, for a model that declares ``likelihood_from_data``; see resolve_hparams)
DATASET_DERIVED = ("image_shape", "likelihood_scale")
#: hyperparameters a leaderboard label names whenever a run's value is not its model's
#: default, even when every run of the table shares it (:func:`non_default_hparams`)
LABEL_IF_NOT_DEFAULT = ("likelihood",)


def _sources() -> tuple[str, ...]:
    from disbench.datasets.registry import SOURCES

    return SOURCES


@dataclass
class RunConfig:
    """Everything that defines one training run (each field's ``help`` says what it is).

    Attributes
    ----------
    model, dataset : str
        Registry names (``disbench.baselines.names()``, ``disbench.datasets.names()``).
    hparams : dict
        Model hyperparameter overrides (the rest take the paper defaults).
    source : {"auto", "official", "synthetic"}
    split : str or None
    steps, batch_size, seed : int
    lr : float or None
    log_every, checkpoint_every : int
    amp : None or "bf16"
    compile : bool
    device : {"auto", "cpu", "cuda"}
    """

    model: str = S.setting(
        check=S.nonempty_str, flag=False,
        help="model name (vae, beta_vae, beta_tcvae, factor_vae, dip_vae_i, dip_vae_ii, "
             "wae_mmd, wae_gan, ab_vae, gwae, ...)")
    dataset: str = S.setting(
        check=S.nonempty_str, metavar="NAME",
        help="dataset name (dsprites, shapes3d, mnist, ...; see 'disbench datasets list')")
    hparams: dict[str, Any] = S.setting(  # noqa: RUF009 -- returns a dataclasses.field
        default_factory=dict, check=S.mapping, group=False, flag=False,
        help="model hyperparameter overrides (the rest take the paper defaults)")
    source: str = S.setting(
        "auto", choices=_sources,
        help="official files, the procedural twin, or auto: official when cached, else the "
             "twin, decided when the run is created (default: auto)")
    split: str | None = S.setting(
        None, check=S.nonempty_str_or_none,
        help="dataset split (default: the dataset's own)")
    dataset_options: dict[str, Any] | None = S.setting(  # noqa: RUF009 -- a field
        None, check=lambda v: None if v is None else S.mapping(v), variant=True,
        flag_type=lambda text: _parse_options(text), metavar="KEY=VALUE[,KEY=VALUE]",
        help="load options of the dataset, e.g. size=28 (Omniglot's 28x28 view); see "
             "'disbench datasets info NAME' (default: none)")
    steps: int = S.setting(
        300_000, check=S.positive_int, variant=True, train="required",
        help="optimisation steps (default: 300000, Locatello et al. 2019)")
    batch_size: int = S.setting(
        64, check=S.positive_int, variant=True, train=True,
        help="batch size (default: 64, Locatello et al. 2019)")
    seed: int = S.setting(
        0, check=S.integer, group=False,
        help="seed of initialisation, batch order and noise (default: 0)")
    lr: float | None = S.setting(
        None, check=S.positive_number_or_none, variant=True, train=True, flag_type=float,
        help="learning rate of the main optimiser (default: the paper's, e.g. 1e-4)")
    log_every: int = S.setting(
        100, check=S.positive_int, hashed=False, train=True, metavar="N",
        help="write the mean loss terms to train_log.csv every N steps (default: 100)")
    amp: str | None = S.setting(
        None, choices=AMP_MODES, variant=True, train=True,
        help="bfloat16 autocast for the forward passes (off by default)")
    compile: bool = S.setting(
        False, check=S.boolean, variant=True, train=True,
        help="torch.compile the encoder/decoder (slow start, faster steps on GPU)")
    device: str = S.setting(
        "auto", choices=DEVICES, hashed=False, train=True,
        help="where to train; auto picks CUDA when present (default: auto)")
    checkpoint_every: int = S.setting(
        1000, check=S.positive_int, hashed=False, train=True, metavar="N",
        help="save model.pt every N steps; an interrupted run loses at most this "
             "(default: 1000)")
    pair_k: int | str = S.setting(
        1, check=lambda v: _pair_k(v), hashed="if_set", variant=True, train=True,
        flag_type=lambda v: int(v) if v.isdigit() else v, metavar="K",
        help="pair models (group_vae, ml_vae): factors that differ in each pair, a number or "
             "random (1 .. K-1 per pair) or one_or_random (disentanglement_lib's dynamics) "
             "(default: 1)")
    num_labelled: int = S.setting(
        100, check=S.positive_int, hashed="if_set", variant=True, train=True, metavar="N",
        help="semi-supervised models (s2_*, supervised_vae): labelled examples, drawn once "
             "from the run's seed (default: 100)")
    labeller: str = S.setting(
        "perfect", check=lambda v: _labeller(v), hashed="if_set", variant=True, train=True,
        help="semi-supervised models: perfect, binned(5), noisy(0.1), permuted or partial(2) "
             "labels (default: perfect)")
    eval_every: int = S.setting(
        0, check=S.non_negative_int, hashed=False, train=True, metavar="N",
        help="evaluate eval_metrics on a fixed draw every N steps into metrics_curve.csv "
             "(default: 0, off)")
    eval_metrics: str = S.setting(
        "mig", check=lambda v: _metric_list(v), hashed=False, train=True, metavar="M,...",
        help="the metrics of metrics_curve.csv, comma-separated (default: mig)")
    eval_points: int = S.setting(
        1000, check=S.positive_int, hashed=False, train=True, metavar="N",
        help="points of the curve's fixed draw: N to fit, N/2 to test (default: 1000)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            problem = f.metadata["check"](getattr(self, f.name))
            if problem:
                raise DisbenchError(f"{f.name} {problem}")
        self.hparams = dict(self.hparams)

    # -- (de)serialisation -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hparams"] = _jsonable(d["hparams"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict (e.g. a ``config.json``); keys that are not fields are ignored."""
        return cls(**{k: v for k, v in d.items() if k in FIELDS})

    # -- resolution ------------------------------------------------------------------
    def resolved(self) -> RunConfig:
        """A copy with ``split`` and ``lr`` resolved and model defaults filled.

        ``source`` stays as requested (see :meth:`concrete_source`). Hyperparameters derived
        from the dataset (image shape, likelihood scale, data set size; the likelihood of a
        model with ``likelihood_from_data``) are left to :func:`resolve_hparams`, unless set
        explicitly; they are functions of (dataset, source, split).
        """
        cls = _model_class(self.model)
        split = self.split or _dataset_class(self.dataset).default_split
        user = dict(self.hparams)
        full = _build(cls, user).to_dict()
        derived = _dataset_derived(cls)
        hparams = {k: v for k, v in full.items() if k in user or k not in derived}
        lr = float(self.lr) if self.lr is not None else float(cls.default_lr)
        return dataclasses.replace(self, split=split, lr=lr, hparams=hparams,
                                   labeller=_canonical_labeller(self.labeller))

    def concrete_source(self) -> str:
        """``official`` or ``synthetic``: ``auto`` resolved against the cache now.

        Called once, when a run folder is created; the result is stored in its record.
        """
        if self.source != "auto":
            return self.source
        ds_cls = _dataset_class(self.dataset)
        split = self.split or ds_cls.default_split
        return "official" if ds_cls.official_available(split) else "synthetic"

    def run_id(self) -> str:
        """Short hash of the resolved config, source as requested (:data:`NOT_HASHED` left out).

        Computed when a run is created; afterwards the id stored in the run folder is the
        run's identity (:meth:`disbench.run.folder.RunFolder.run_id`).
        """
        d = self.resolved().to_dict()
        for k in NOT_HASHED:
            d.pop(k)
        if not d.get("dataset_options"):  # absent before the field existed: ids unchanged
            d.pop("dataset_options", None)
        for k in HASHED_IF_SET:  # a model-specific setting at its default: as before it existed
            if d[k] == _DEFAULTS[k]:
                d.pop(k)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def run_dir(self, runs_root: str | Path) -> Path:
        """The run's folder, ``runs_root/<dataset>/<model>/<run_id>-s<seed>``."""
        from disbench.run.folder import run_path

        return run_path(runs_root, self.dataset, self.model, self.run_id(), self.seed)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig))
#: fields in the run id
HASHED: tuple[str, ...] = S.names_where(RunConfig, "hashed")
#: fields that do not change what is learned
NOT_HASHED: tuple[str, ...] = tuple(f for f in FIELDS if f not in HASHED)
#: hashed fields left out of the run id while at their default
HASHED_IF_SET: tuple[str, ...] = S.names_where(RunConfig, "hashed", "if_set")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}
#: fields that must agree for runs to train together as one ensemble
GROUP_FIELDS: tuple[str, ...] = S.names_where(RunConfig, "group")
#: training settings that make a leaderboard variant when they differ
VARIANT_FIELDS: tuple[str, ...] = S.names_where(RunConfig, "variant")
#: the keys of a sweep spec's ``train:`` section (TRAIN_REQUIRED: those it must give)
TRAIN_FIELDS: tuple[str, ...] = S.names_where(RunConfig, "train")
TRAIN_REQUIRED: tuple[str, ...] = S.names_where(RunConfig, "train", "required")
#: the ``disbench train`` flags derived from the fields (model is positional, hparams --set)
FLAG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig)
                                     if f.metadata["flag"] is not False)


def _parse_options(text: str) -> dict[str, Any]:
    """``--dataset-options size=28,channels=3``: comma-separated key=value, values read as
    YAML scalars."""
    import yaml

    out: dict[str, Any] = {}
    for item in (p for p in text.split(",") if p.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DisbenchError(f"--dataset-options expects key=value[,key=value], got "
                                f"{text!r} (e.g. --dataset-options size=28)")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _pair_k(v: Any) -> str | None:
    from disbench.datasets.pairs import check_k

    return check_k(v)


def _labeller(v: Any) -> str | None:
    from disbench.datasets.labellers import check_labeller

    return check_labeller(v)


def _canonical_labeller(v: str) -> str:
    from disbench.datasets.labellers import canonical_labeller

    return canonical_labeller(v)


def _metric_list(v: Any) -> str | None:
    """Format only; the names are checked when a curve is first evaluated."""
    if isinstance(v, str) and [m for m in v.split(",") if m.strip()] and \
            all(m.strip() for m in v.split(",")):
        return None
    return f"must be comma-separated metric names, e.g. mig,sap, got {v!r}"


def _model_class(model: str) -> type:
    from disbench.baselines.registry import MODELS, names

    try:
        return MODELS[model]
    except KeyError:
        raise DisbenchError(
            f"unknown model {model!r}; choose one of {', '.join(names())}"
        ) from None


def _dataset_class(dataset: str) -> type:
    from disbench.datasets.registry import spec

    return spec(dataset)


def _build(cls: type, hparams: dict[str, Any]) -> Any:
    from disbench.baselines.base import build_hparams

    return build_hparams(cls.Hparams, cls.registry_name, hparams)


def _dataset_size_keys(cls: type) -> tuple[str, ...]:
    """The hyperparameters filled from the data at training time (size, label sizes)."""
    keys = (getattr(cls, "dataset_size_hparam", None), getattr(cls, "label_sizes_hparam", None))
    return tuple(k for k in keys if k)


def _likelihood_from_data(cls: type) -> bool:
    return bool(getattr(cls, "likelihood_from_data", False))


def _dataset_derived(cls: type) -> set[str]:
    """The hyperparameters of model class ``cls`` that :func:`resolve_hparams` fills from
    the dataset (left out of the run id unless set)."""
    keys = set(DATASET_DERIVED) | set(_dataset_size_keys(cls))
    if _likelihood_from_data(cls):
        keys.add("likelihood")
    return keys


def resolve_hparams(cfg: RunConfig, dataset: Any,
                    label_sizes: list[int] | None = None) -> dict[str, Any]:
    """Every hyperparameter of ``cfg.model`` for training on ``dataset`` (JSON-ready).

    image_shape comes from the dataset (a different explicit value is an error). The
    likelihood, unless set, is the model's own default, whatever the data: ``bernoulli``
    for the image models (:class:`disbench.baselines.base.ModelHparams`; the
    ``bernoulli_loss`` on logits that the Locatello et al. 2019 study uses for every
    dataset, 3D Shapes included: google-research/disentanglement_lib
    ``config/unsupervised_study_v1/model_configs/shared.gin``), ``gaussian`` for the
    sequence models. ``likelihood=gaussian`` (or ``laplace``) is the named option; it is
    what this rule gave before on non-binary data. A model class that declares
    ``likelihood_from_data = True`` (wae_mmd, wae_gan) keeps that earlier rule: Bernoulli
    for binary data (the dataset's ``binary`` flag) and Gaussian otherwise. A model's
    data-set-size hyperparameter (beta_tcvae's ``dataset_size``) is ``len(dataset)``
    unless set; a semi-supervised model's label-sizes hyperparameter is ``label_sizes``
    (the values of each labelled factor after the labeller) unless set. The result is what
    ``config.json`` records as ``hparams``.
    """
    cls = _model_class(cfg.model)
    hp = dict(cfg.hparams)
    shape = tuple(int(s) for s in dataset.image_shape)
    if "image_shape" in hp and tuple(hp["image_shape"]) != shape:
        raise DisbenchError(
            f"image_shape={list(hp['image_shape'])} does not match dataset {cfg.dataset!r} "
            f"images {list(shape)}; drop the image_shape setting"
        )
    hp["image_shape"] = shape
    if _likelihood_from_data(cls):
        hp.setdefault("likelihood",
                      "bernoulli" if getattr(dataset, "binary", False) else "gaussian")
    if getattr(cls, "dataset_size_hparam", None):
        hp.setdefault(cls.dataset_size_hparam, len(dataset))
    if label_sizes is not None and getattr(cls, "label_sizes_hparam", None):
        hp.setdefault(cls.label_sizes_hparam, list(label_sizes))
    return _build(cls, hp).to_dict()


def non_default_hparams(model: str, hparams: dict[str, Any]) -> tuple[str, ...]:
    """The :data:`LABEL_IF_NOT_DEFAULT` keys whose value in ``hparams`` (a run's recorded
    hyperparameters) is not ``model``'s default; none for an unknown model, and none for
    a key the data decides (the likelihood of a ``likelihood_from_data`` model)."""
    from disbench.baselines.registry import MODELS

    cls = MODELS.get(model)
    if cls is None:
        return ()
    defaults = {f.name: f.default for f in dataclasses.fields(cls.Hparams)}
    derived = _dataset_derived(cls)
    return tuple(k for k in LABEL_IF_NOT_DEFAULT
                 if k in hparams and k in defaults and k not in derived
                 and hparams[k] != defaults[k])
