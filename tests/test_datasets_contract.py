"""The dataset contract: every registry entry and every loaded object satisfies it."""
import ast
import inspect
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from disbench import datasets
from disbench.cli import main
from disbench.datasets import contract
from disbench.datasets.contract import DESCRIBE_KEYS, KINDS, PROTOCOLS, DatasetEntry, Option
from disbench.datasets.entry import DatasetSpec
from disbench.errors import DisbenchError

# Small synthetic instances, so that the walk stays cheap; a dataset missing here is loaded
# with its defaults.
CHEAP = {
    "mnist": {"split": "test"},
    "fashion_mnist": {"split": "test"},
    "omniglot": {"split": "background_small1", "size": 28},
    "celeba": {"split": "valid", "n_total": 400},
    "sprites": {"split": "test", "max_characters": 1},
}


@pytest.mark.parametrize("name", datasets.names())
def test_every_entry_satisfies_the_entry_contract(name, empty_cache):
    cls = datasets.spec(name)
    assert isinstance(cls, DatasetEntry)
    assert contract.missing_members(cls, DatasetEntry) == []
    assert cls.name == name and cls.summary and cls.kind in KINDS
    assert cls.homepage and cls.licence and cls.citation
    # splits: the default among them, each naming files of the manifest, sizes for each
    assert cls.default_split in cls.splits and cls.check_split(None) == cls.default_split
    names = {f.name for f in cls.files}
    assert all(set(files) <= names for files in cls.splits.values())
    assert set(cls.split_sizes) == set(cls.splits)
    with pytest.raises(DisbenchError, match=f"{name}: unknown split 'nope'") as err:
        cls.check_split("nope")
    assert all(repr(s) in str(err.value) for s in cls.splits)
    assert all(isinstance(o, Option) and set(o.sources) <= {"official", "synthetic"}
               for o in cls.options.values())
    # the callable members take what the contract says
    params = inspect.signature(cls.prepare).parameters
    assert list(params)[:2] == ["source", "split"] and "progress" in params
    assert list(inspect.signature(cls.import_dir).parameters) == ["folder"]
    # nothing is cached in a fresh cache
    assert cls.available_splits() == [] and not cls.official_available(None)
    with pytest.raises(DisbenchError, match="is not a folder"):
        cls.import_dir(empty_cache / "no-such-folder")


def test_describe_has_one_set_of_keys(empty_cache, capsys):
    for name in datasets.names():
        d = datasets.spec(name).describe()
        assert tuple(d) == DESCRIBE_KEYS, name
        assert d["name"] == name and d["kind"] in KINDS
        assert d["cache_folder"].startswith(str(empty_cache))
        assert set(d["files"]) == {f.name for f in datasets.spec(name).files}
        # every file has a checksum, or (the Scream, MPI3D real) says none is published and
        # that the first copy's SHA-256 is pinned
        assert all(r["url"].startswith("http") and ("sha256" in r or "md5" in r or
                                                    r["checksum_source"].startswith(
                                                        "none published"))
                   for r in d["files"].values())
        assert d["official_cached"] == [] and d["twin_cached"] == []
        assert (d["factors"] == {}) == (d["kind"] == "labelled")
        assert main(["datasets", "info", name]) == 0
        out = capsys.readouterr().out
        assert all(f"{k.replace('_', ' ')}:" in out for k in DESCRIBE_KEYS)


@pytest.mark.parametrize("name", datasets.names())
def test_loaded_objects_satisfy_the_protocol_of_their_kind(name):
    cls = datasets.spec(name)
    ds = datasets.get(name, source="synthetic", **CHEAP.get(name, {}))
    protocol = PROTOCOLS[cls.kind]
    assert contract.missing_members(ds, protocol) == [] and isinstance(ds, protocol)
    assert ds.name == name and ds.source == "synthetic"
    assert ds.split == CHEAP.get(name, {}).get("split", cls.default_split)
    assert ds.images.dtype == np.uint8 and len(ds) == ds.images.shape[0] > 0
    assert tuple(ds.images.shape[-3:]) == tuple(ds.image_shape)
    if cls.kind == "ground_truth":
        assert tuple(ds.images.shape[1:]) == cls.observation_shape
        assert dict(zip(ds.factor_names, ds.factor_sizes, strict=True)) == cls.factor_table()


def test_ground_truth_random_states():
    # the numbers drawn from the generators callers pass are those of before the contract
    ds = datasets.get("dsprites", source="synthetic")
    assert ds.sample_factors(3, np.random.default_rng(0)).tolist() == \
        [[2, 1, 3, 26, 16], [1, 1, 0, 20, 19], [1, 0, 7, 29, 31]]
    assert ds.sample_factors(3, np.random.RandomState(0)).tolist() == \
        [[0, 3, 39, 21, 23], [1, 3, 9, 18, 6], [0, 3, 19, 4, 24]]
    s3 = datasets.get("shapes3d", source="synthetic")
    assert s3.sample_factors(3, np.random.default_rng(0)).tolist() == \
        [[8, 2, 0, 6, 2, 10], [6, 3, 0, 5, 2, 9], [5, 0, 1, 7, 3, 8]]
    # an int seeds a RandomState, as disentanglement_lib's datasets and the metrics do
    np.testing.assert_array_equal(s3.sample_factors(50, 7),
                                  s3.sample_factors(50, np.random.RandomState(7)))
    f = ds.sample_factors(4, 1)
    np.testing.assert_array_equal(ds.sample_observations_from_factors(f, 1),
                                  ds.sample_observations_from_factors(f))
    with pytest.raises(ValueError, match="random_state"):
        ds.sample_observations_from_factors(f, "seed")


@pytest.mark.usefixtures("empty_cache")
def test_options_are_checked_and_routed():
    with pytest.raises(DisbenchError, match="unknown option.*sizee.*valid options: .*size"):
        datasets.get("omniglot", source="synthetic", split="background_small1", sizee=28)
    with pytest.raises(DisbenchError, match="dsprites: unknown option.*seed"):
        datasets.get("dsprites", source="synthetic", seed=1)
    # a twin-only option is not passed to the official loader: the error is the missing file
    with pytest.raises(DisbenchError, match="missing official file img_align_celeba.zip"):
        datasets.get("celeba", source="official", split="test", n_total=400)


def test_register_refuses_an_incomplete_dataset():
    class Half:
        summary = "half a dataset"

    with pytest.raises(TypeError, match="'half'.*missing .*check_split.*load_official"):
        datasets.register("half")(Half)

    class NoKind(DatasetSpec):
        splits: ClassVar[dict] = {"train": ()}

    with pytest.raises(TypeError, match="kind must be one of"):
        datasets.register("nokind")(NoKind)
    assert "half" not in datasets.DATASETS and "nokind" not in datasets.DATASETS


def test_datasets_import_only_leaf_utilities():
    allowed = ("disbench.errors", "disbench.paths", "disbench.atomic", "disbench.datasets")
    folder = Path(datasets.__file__).parent
    bad = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else []
            bad += [f"{path.name}: {m}" for m in mods if m.split(".")[0] == "disbench"
                    and not m.startswith(allowed)]
    assert bad == []
