"""Issue 21, item 2: derived caches (converted layouts, rendered twins, decoded archives) are
stamped with a digest and checked on open; a damaged one is named and rebuilt, never used."""
import hashlib
import io
import json
import logging
import zipfile

import numpy as np
import pytest
from disbench import datasets as D
from disbench.cli import main
from disbench.datasets import cache
from disbench.datasets import dsprites as dsp
from disbench.datasets.download import OfficialFile


def _warned(caplog, path):
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and str(path) in r.getMessage()]


def test_digest_modes_and_stamp(tmp_path):
    a = np.arange(4000 * 12, dtype=np.uint8).reshape(4000, 12)
    p = tmp_path / "a.npy"
    np.save(p, a)
    for mode in cache.MODES:
        cache.write_stamp(p, "src", mode=mode)
        rec = json.loads(cache.stamp_path(p).read_text())
        assert rec["source"] == "src" and rec["digest_mode"] == mode
        assert cache.problem(p, "src") is None and cache.problem(p, "other") == "stale"
    cache.write_stamp(p, "src", mode="sampled")
    b = a.copy()
    b[1] += 1  # a row the sampled digest does not read: not detected (as documented)
    np.save(p, b)
    assert cache.problem(p, "src") is None
    b[-1] += 1  # the last row is always sampled
    np.save(p, b)
    assert "differs from the stamped" in cache.problem(p, "src")
    p.write_bytes(p.read_bytes()[:100])
    assert "cannot be read" in cache.problem(p, "src")
    assert cache.problem(tmp_path / "none.npy", "src") == "missing"


# `empty_cache` unused here: requested for its side effect (an empty $DISBENCH_DATA)
@pytest.fixture
def official_dsprites(empty_cache, monkeypatch, tmp_path):  # noqa: ARG001
    """A verified 1024-row dSprites file in the cache (the grid shrunk for the test)."""
    monkeypatch.setattr(dsp, "NUM_IMAGES", 1024)
    monkeypatch.setattr(dsp.DSprites, "factor_sizes", (1, 1, 1, 32, 32))
    classes, values = dsp._latents(1024)
    imgs = dsp.render_masks(classes[:, 1:]).astype(np.uint8)
    src = tmp_path / dsp.OFFICIAL.name
    with zipfile.ZipFile(src, "w") as zf:
        for key, arr in (("imgs", imgs), ("latents_values", values),
                         ("latents_classes", classes), ("metadata", np.array("{}"))):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr)
            zf.writestr(f"{key}.npy", buf.getvalue())
    spec = OfficialFile(dsp.OFFICIAL.name, "http://127.0.0.1:9/x",
                        md5=hashlib.md5(src.read_bytes()).hexdigest())
    monkeypatch.setattr(dsp, "OFFICIAL", spec)
    monkeypatch.setattr(dsp.DSprites, "files", (spec,))
    dsp.DSprites.import_dir(tmp_path)
    return imgs.astype(np.uint8)[:, None] * 255


@pytest.mark.parametrize("damage", ["half_zeroed", "truncated", "empty", "stamp"])
def test_damaged_official_layout_is_named_and_converted_again(official_dsprites, empty_cache,
                                                              caplog, damage):
    first = D.get("dsprites", source="official")
    np.testing.assert_array_equal(first.images, official_dsprites)
    layout = empty_cache / "dsprites" / "official_images.npy"
    raw = layout.read_bytes()
    if damage == "half_zeroed":
        layout.write_bytes(raw[:len(raw) // 2] + bytes(len(raw) - len(raw) // 2))
    elif damage == "truncated":
        layout.write_bytes(raw[:len(raw) // 3])
    elif damage == "empty":
        layout.write_bytes(b"")
    else:
        cache.stamp_path(layout).write_text("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = D.get("dsprites", source="official")
    assert _warned(caplog, layout), [r.getMessage() for r in caplog.records]
    np.testing.assert_array_equal(again.images, official_dsprites)
    assert cache.problem(layout, json.loads(cache.stamp_path(layout).read_text())["source"]) \
        is None


def test_damaged_twin_layout_renders_on_demand_and_prepare_renders_it_again(
        empty_cache, monkeypatch, caplog):
    monkeypatch.setattr(dsp, "NUM_IMAGES", 1024)
    monkeypatch.setattr(dsp.DSprites, "factor_sizes", (1, 1, 1, 32, 32))
    assert main(["datasets", "prepare", "dsprites", "--source", "synthetic"]) == 0
    layout = empty_cache / "dsprites" / "synthetic_images.npy"
    good = np.load(layout)
    raw = layout.read_bytes()
    layout.write_bytes(raw[:len(raw) // 2] + bytes(len(raw) - len(raw) // 2))
    with caplog.at_level(logging.WARNING):
        ds = D.get("dsprites", source="synthetic")
    msgs = _warned(caplog, layout)
    assert msgs and "prepare dsprites --source synthetic" in msgs[0]
    np.testing.assert_array_equal(np.asarray(ds.images), good)  # rendered on demand
    assert dsp.DSprites.twin_cached() == []
    assert main(["datasets", "prepare", "dsprites", "--source", "synthetic"]) == 0
    assert dsp.DSprites.twin_cached() == ["train"]
    np.testing.assert_array_equal(np.load(layout), good)


def test_truncated_omniglot_decoded_cache_is_decoded_again(caplog):
    # the session cache (damaged files are rebuilt, so it is left as it was)
    ds = D.get("omniglot", source="synthetic", split="background_small1")
    folder = D.spec("omniglot").twin_folder(0)
    (decoded,) = folder.glob(".images_background_small1-*.decoded.npz")
    decoded.write_bytes(decoded.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = D.get("omniglot", source="synthetic", split="background_small1")
    assert _warned(caplog, decoded)
    np.testing.assert_array_equal(again.images, ds.images)
    decoded.write_bytes(b"")  # an empty one too, and a stamp-less one
    D.get("omniglot", source="synthetic", split="background_small1")
    cache.stamp_path(decoded).unlink()
    np.testing.assert_array_equal(
        D.get("omniglot", source="synthetic", split="background_small1").images, ds.images)


@pytest.fixture
def tiny_omniglot(empty_cache, monkeypatch):
    """An empty cache and a background_small1 split of 2 characters (40 images): fast."""
    from disbench.datasets import omniglot

    monkeypatch.setitem(omniglot.ALPHABETS, "background_small1", {"Greek": 2})
    monkeypatch.setitem(omniglot.SPLIT_CHARACTERS, "background_small1", 2)
    monkeypatch.setitem(omniglot.SPLIT_IMAGES, "background_small1", 40)
    return empty_cache


@pytest.mark.usefixtures("tiny_omniglot")
def test_truncated_omniglot_twin_zip_is_rendered_again_not_downloaded(caplog):
    split = ["--split", "background_small1"]
    ds = D.get("omniglot", source="synthetic", split=split[1])
    assert ds.images.shape == (40, 1, 105, 105)
    folder = D.spec("omniglot").twin_folder(0)
    zpath = folder / "images_background_small1.zip"
    good = zpath.read_bytes()

    def damage(data):  # without the decoded cache, so the zip must be read
        for decoded in folder.glob(".images_background_small1-*.decoded.*"):
            decoded.unlink()
        zpath.write_bytes(data)

    damage(good[:len(good) // 3])  # truncated
    with caplog.at_level(logging.WARNING):
        assert main(["datasets", "prepare", "omniglot", "--source", "synthetic", *split]) == 0
    msgs = _warned(caplog, zpath)
    assert msgs and "rendering the twin again" in msgs[0], msgs
    assert not any("download" in m for m in msgs), msgs
    assert zpath.read_bytes() == good  # the same twin, rendered again
    # stamped, yet not a zip (the stamp rewritten to match): rendered again on load, and
    # what it says of the bad zip is that a twin is rendered again, not downloaded
    damage(b"not a zip")
    cache.write_stamp(zpath, D.spec("omniglot").twin_fingerprint(0), mode="full")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = D.get("omniglot", source="synthetic", split=split[1])
    msgs = _warned(caplog, zpath)
    assert msgs and "not a valid zip" in msgs[0] and "synthetic twin" in msgs[0], msgs
    assert not any("download" in m for m in msgs), msgs
    np.testing.assert_array_equal(again.images, ds.images)
    assert zpath.read_bytes() == good


def test_truncated_mnist_twin_is_rendered_again_not_downloaded(caplog):
    # the session cache (damaged files are rebuilt, so it is left as it was)
    ds = D.get("mnist", source="synthetic", split="test")
    folder = D.spec("mnist").twin_folder(0)
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:5000])
    with caplog.at_level(logging.WARNING):
        again = D.get("mnist", source="synthetic", split="test")
    msgs = _warned(caplog, images)
    assert msgs and not any("download" in m for m in msgs)
    np.testing.assert_array_equal(again.images, ds.images)
    # stamped but unparsable (the stamp rewritten to match): still rendered again
    images.write_bytes(b"\x1f\x8b garbage")
    cache.write_stamp(images, D.spec("mnist").twin_fingerprint(0), mode="full")
    np.testing.assert_array_equal(D.get("mnist", source="synthetic", split="test").images,
                                  ds.images)


def test_damaged_celeba_decoded_cache_is_decoded_again(empty_cache, caplog):
    good = np.array(D.get("celeba", source="synthetic", split="valid", n_total=400).images)
    (decoded,) = (empty_cache / "celeba").rglob(".celeba64-*-valid.npy")
    raw = decoded.read_bytes()
    decoded.write_bytes(raw[:len(raw) // 2] + bytes(len(raw) - len(raw) // 2))
    with caplog.at_level(logging.WARNING):
        again = D.get("celeba", source="synthetic", split="valid", n_total=400)
    assert _warned(caplog, decoded)
    np.testing.assert_array_equal(again.images, good)
