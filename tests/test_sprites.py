"""Sprites: exact regeneration from the LPC sheets, labels and split, checksums, the twin."""
import functools
import http.server
import shutil
import threading

import numpy as np
import pytest
import torch
from disbench.datasets import get
from disbench.datasets import sprites as S
from disbench.errors import DisbenchError

# The recipe, written out independently of the module: (row, columns) per action/direction.
WALK_COLS = [8, 1, 2, 3, 4, 5, 6, 7]
SPELL_COLS = [0, 1, 2, 3, 4, 5, 4, 6]
SLASH_COLS = [0, 1, 2, 3, 4, 5, 4, 0]
RECIPE = {  # label 3 * action + direction, directions (front, left, right)
    0: (10, WALK_COLS), 1: (9, WALK_COLS), 2: (11, WALK_COLS),
    3: (2, SPELL_COLS), 4: (1, SPELL_COLS), 5: (3, SPELL_COLS),
    6: (14, SLASH_COLS), 7: (13, SLASH_COLS), 8: (15, SLASH_COLS),
}


def _composite_full_sheet(folder, c):
    from PIL import Image

    parts = [f"body/{c // 216}.png", f"bottomwear/{(c // 36) % 6}.png",
             f"topwear/{(c // 6) % 6}.png", f"hair/{c % 6}.png", "shoes/1.png"]
    canvas = Image.new("RGBA", (832, 1344), "black")
    for p in parts:
        canvas = Image.alpha_composite(canvas, Image.open(folder / p).convert("RGBA"))
    return np.asarray(canvas)[..., :3]


def _expected_sequence(sheet, label):
    row, cols = RECIPE[label]
    frames = [sheet[row * 64:(row + 1) * 64, c * 64:(c + 1) * 64] for c in cols]
    return np.stack(frames).transpose(0, 3, 1, 2)


def test_split_and_labels_without_rendering():
    train, test = S.split_characters("train"), S.split_characters("test")
    assert len(train) == 1000 and len(test) == 296
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1296))
    perm = np.random.RandomState(423).permutation(1296)
    np.testing.assert_array_equal(train, perm[:1000])
    for chars, n in ((train, 9000), (test, 2664)):
        c, static, action = S.sequence_labels(chars)
        assert len(c) == len(static) == len(action) == n
        assert static.dtype == np.int64 and action.dtype == np.int64
        np.testing.assert_array_equal(static[:, 0], c // 216)
        np.testing.assert_array_equal(static[:, 3], c % 6)
        assert static.min() == 0 and static.max() == 5
        # every action once per character
        np.testing.assert_array_equal(np.bincount(action), np.full(9, n // 9))
    # attribute decoding of a few hand-computed characters
    np.testing.assert_array_equal(S.character_attributes([0, 1295, 259]),
                                  [[0, 0, 0, 0], [5, 5, 5, 5], [1, 1, 1, 1]])
    with pytest.raises(DisbenchError, match="splits"):
        S.split_characters("valid")


def test_regenerated_frames_equal_sheet_crops(realdata):
    folder = realdata / "sprites_lpc"
    chars = [0, 1295, 777]
    out = S.SheetRenderer(folder).render(chars)
    assert out.shape == (27, 8, 3, 64, 64) and out.dtype == np.uint8
    for j, c in enumerate(chars):
        sheet = _composite_full_sheet(folder, c)
        for label in range(9):
            np.testing.assert_array_equal(out[9 * j + label], _expected_sequence(sheet, label))
    # characters differ, frames within a walk differ (it is a video, not a still)
    assert not np.array_equal(out[0], out[9])
    assert not np.array_equal(out[0, 0], out[0, 1])


@pytest.mark.usefixtures("empty_cache")
def test_official_import_and_load(realdata):
    assert not S.Sprites.official_available("test")
    with pytest.raises(DisbenchError, match="body/0.png"):
        get("sprites", source="official", split="test")
    out = S.Sprites.import_dir(realdata / "sprites_lpc")
    assert len(out.imported) == 39 and "body/6.png" in out.imported
    assert out.splits == ["train", "test"]
    assert S.Sprites.official_available("test")
    ds = get("sprites", source="official", split="test", max_characters=2, progress=False)
    assert len(ds) == 18 and ds.images.shape == (18, 8, 3, 64, 64)
    assert ds.images.dtype == np.uint8 and ds.T == 8
    assert ds.static_factor_names == ("body", "bottomwear", "topwear", "hair")
    assert ds.static_factor_sizes == (6, 6, 6, 6) and ds.num_actions == 9
    chars = S.split_characters("test")[:2]
    np.testing.assert_array_equal(ds.characters, np.repeat(chars, 9))
    sheet = _composite_full_sheet(realdata / "sprites_lpc", int(chars[1]))
    np.testing.assert_array_equal(np.asarray(ds.images[9 + 4]), _expected_sequence(sheet, 4))
    x, target = ds[9 + 4]
    assert x.dtype == torch.uint8 and x.shape == (8, 3, 64, 64)
    assert int(target["action"]) == 4
    assert target["static"].tolist() == S.character_attributes(chars[1]).tolist()
    assert ds.tensor("cpu").shape == (18, 8, 3, 64, 64)
    assert ds.fingerprint.startswith("lpc-") and ds.source == "official"
    # cached file is reused
    again = get("sprites", source="official", split="test", max_characters=2)
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(ds.images))


@pytest.mark.usefixtures("empty_cache")
def test_corrupt_sheet_is_rejected(realdata, tmp_path):
    src = tmp_path / "lpc"
    shutil.copytree(realdata / "sprites_lpc", src)
    data = bytearray((src / "hair/3.png").read_bytes())
    data[100] ^= 0xFF
    (src / "hair/3.png").write_bytes(bytes(data))
    with pytest.raises(DisbenchError, match="sha256"):
        S.Sprites.import_dir(src)
    (src / "shoes/1.png").unlink()
    with pytest.raises(DisbenchError, match="shoes/1.png"):
        S.Sprites.import_dir(src)
    with pytest.raises(DisbenchError, match="neither"):
        S.Sprites.import_dir(tmp_path)


def test_prepare_downloads_and_verifies(realdata, empty_cache, monkeypatch):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(realdata / "sprites_lpc"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        sheets = {rel: S.OfficialFile(name=rel, url=base + rel, sha256=f.sha256, size=f.size)
                  for rel, f in S.SHEETS.items()}
        monkeypatch.setattr(S, "SHEETS", sheets)
        monkeypatch.setattr(S.Sprites, "files", tuple(sheets.values()))
        S.Sprites.prepare("official", progress=False, render=False)
    finally:
        server.shutdown()
    for rel in S.USED_SHEETS:
        assert (empty_cache / "sprites" / "official" / "sheets" / rel).is_file()
    assert not (empty_cache / "sprites" / "official" / "sheets" / "body/6.png").exists()


@pytest.mark.usefixtures("empty_cache")
def test_npy_import(tmp_path):
    # C-DSVAE layout arrays built from twin frames: X = uint8 / 256, one-hot A and D.
    for split, k in (("train", 3), ("test", 2)):
        chars = S.split_characters(split)[:k]
        imgs = S.render_twin(chars)
        _, static, action = S.sequence_labels(chars)
        order = np.random.default_rng(0).permutation(len(imgs))
        x = imgs[order].transpose(0, 1, 3, 4, 2).astype(np.float32) / 256
        a = np.zeros((len(x), 8, 4, 6), np.float32)
        a[np.arange(len(x))[:, None], :, np.arange(4)[None], static[order]] = 1
        d = np.zeros((len(x), 8, 9), np.float32)
        d[np.arange(len(x)), :, action[order]] = 1
        np.save(tmp_path / f"sprites_X_{split}.npy", x)
        np.save(tmp_path / f"sprites_A_{split}.npy", a)
        np.save(tmp_path / f"sprites_D_{split}.npy", d)
        expected = (imgs[order], static[order], action[order])
        if split == "train":
            train_expected = expected
    S.Sprites.import_dir(tmp_path)
    ds = get("sprites", source="official", split="train")
    np.testing.assert_array_equal(np.asarray(ds.images), train_expected[0])
    np.testing.assert_array_equal(ds.static_labels, train_expected[1])
    np.testing.assert_array_equal(ds.action_labels, train_expected[2])
    assert ds.fingerprint.startswith("npy-")
    np.save(tmp_path / "sprites_D_test.npy", np.zeros((18, 8, 9), np.float32))
    with pytest.raises(DisbenchError, match="one-hot"):
        S.Sprites.import_dir(tmp_path)


def test_twin_deterministic_and_shaped():
    chars = S.split_characters("train")[:4]
    a, b = S.render_twin(chars, seed=0), S.render_twin(chars, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (36, 8, 3, 64, 64) and a.dtype == np.uint8
    assert not np.array_equal(a, S.render_twin(chars, seed=1))
    # every static attribute and every action changes the pixels
    base = S.render_twin([0])
    for c in (216, 36, 6, 1):
        assert not np.array_equal(base, S.render_twin([c]))
    assert len({base[k].tobytes() for k in range(9)}) == 9
    ds = get("sprites", source="synthetic", split="test", max_characters=3)
    assert len(ds) == 27 and ds.source == "synthetic"
    assert ds.fingerprint == "synthetic-v1-seed0-first3"
    np.testing.assert_array_equal(np.asarray(ds.images),
                                  S.render_twin(S.split_characters("test")[:3]))
    _, static, action = S.sequence_labels(S.split_characters("test")[:3])
    np.testing.assert_array_equal(ds.static_labels, static)
    np.testing.assert_array_equal(ds.action_labels, action)
