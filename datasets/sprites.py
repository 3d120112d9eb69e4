"""Sprites: the video dataset of Li & Mandt (2018), and its procedural twin.

Official data
-------------
Li & Mandt, "Disentangled Sequential Autoencoder", ICML 2018 (also used by R-WAE, Han et
al. 2021, and C-DSVAE, Bai et al. 2021) generate their Sprites videos from Liberated Pixel
Cup sprite sheets (repository ``YingzhenLi/Sprites``, pinned at commit
:data:`LPC_COMMIT`; CC-BY-SA 3.0 / GPL 3.0). This module regenerates that dataset exactly
from the sheets (its own code, written from the recipe below):

- 1296 characters ``c = 0..1295``: ``body = c // 216``, ``bottomwear = (c // 36) % 6``,
  ``topwear = (c // 6) % 6``, ``hair = c % 6``. On an opaque black 832x1344 RGBA canvas
  the sheets body, bottomwear, topwear, hair and then ``shoes/1.png`` are alpha-composited
  (PIL ``Image.alpha_composite``).
- Sheets are 13 columns by 21 rows of 64x64 tiles. Three actions in three directions:
  walk uses rows 9, 10, 11 (left, front, right) with columns ``[8, 1, 2, 3, 4, 5, 6, 7]``;
  spellcard rows 1, 2, 3 with columns ``[0, 1, 2, 3, 4, 5, 4, 6]``; slash rows 13, 14, 15
  with columns ``[0, 1, 2, 3, 4, 5, 4, 0]``.
- Split: characters permuted by ``np.random.seed(423); np.random.permutation(1296)``; the
  first 1000 are train, the last 296 test, giving 9000 train and 2664 test sequences of 8
  frames. Action label ``3 * action + direction`` with actions (walk, spellcard, slash) and
  directions (front, left, right): 9 classes. Static labels body (skin), bottomwear
  (pants), topwear (top) and hair, 6 values each.
- Pixels are the composited RGB values; the published float arrays are ``uint8 / 256``,
  so storing uint8 loses nothing.

Only sheets 0..5 of each attribute are ever used: ``c // 216 < 6`` for ``c < 1296``, so
``body/6.png`` (and ``bottomwear/6``, ``topwear/6``, ``hair/6..9``, ``eyes/*``,
``shoes/0`` and ``shoes/2``) are in the repository but not in the dataset. ``prepare``
therefore downloads the 25 sheets the recipe reads; ``import`` accepts the full 39-sheet
folder (extra sheets are verified when present).

Stored layout (both sources): one uint8 HDF5 file per split with ``images`` of shape
``(N, T, C, H, W) = (N, 8, 3, 64, 64)``, ``static_labels`` int64 ``(N, 4)``,
``action_labels`` int64 ``(N,)`` and ``characters`` int64 ``(N,)``. Sequences are ordered
character-major: row ``9 * j + label`` holds character ``j`` of the split (in permuted
order) doing action ``label``. The file is written atomically and read back as an
``np.memmap`` (contiguous, uncompressed), so the 0.9 GB train split is not loaded into RAM.

Import of C-DSVAE-style arrays: ``sprites_{X,A,D}_{train,test}.npy`` with ``X`` float in
[0, 1) of shape ``(N, 8, 64, 64, 3)``, ``A`` one-hot ``(N, 8, 4, 6)`` and ``D`` one-hot
``(N, 8, 9)`` are converted to the same HDF5 layout (``uint8 = round(256 * X)``), in the
arrays' own order.

Twin
----
Procedural characters (a head, hair, torso, arms, legs and shoes drawn from simple shapes)
with 4 static attributes of 6 options each (skin tone, pants colour, top colour and
pattern, hair colour and style) and the same 9 motions of 8 frames (walk, spellcard and
slash, seen from the front, left and right), the same shapes, labels and split. Rendering
is vectorised: 72 part-label maps (one per motion frame) are coloured by a palette lookup
per character.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile, verify
from disbench.datasets.entry import PROGRESS, SEED, DatasetSpec
from disbench.datasets.registry import register
from disbench.errors import DisbenchError
from disbench.paths import dataset_dir

log = logging.getLogger(__name__)

LPC_COMMIT = "3ce4048c5227802bd8f1888e293fd3afdba91c0c"
_RAW = f"https://raw.githubusercontent.com/YingzhenLi/Sprites/{LPC_COMMIT}/"

# sha256 and size of the 39 sheets at LPC_COMMIT.
_SHEET_SUMS = {
    "body/0.png": ("27d1ac78db37c42f35a20d15c42705efc5e58d47c236cc01423879d4f797f151", 33734),
    "body/1.png": ("1535e9228357b884df80f777a0d1dac10ac35e550e4d8d077105ccad014a1460", 32036),
    "body/2.png": ("7c241033b4897501cb3721b6c3a9ebfa94b13db10a539edbd9bcc3e0c2a4bcb9", 33247),
    "body/3.png": ("055f5aa33fc112d8444b42fce2cf50608a9fbbf2466c54ceaa46c777589a717a", 33232),
    "body/4.png": ("57f3b9c510482379aba9a32fc0de7d48e9cbe3dc40f2447283547f773b77ca72", 33226),
    "body/5.png": ("91e49453aeab5ebbb4fd2b48253812895dcfb4cb1829b84e24425c66de8f04ff", 31114),
    "body/6.png": ("5b9678d177c0c33bcac9c47ef74460e9401b99cc4be7dffdccc0951e9eba3993", 54495),
    "bottomwear/0.png": ("4ec356c488e272fde2d2d0d722b12a80217871e41161d43ba784caf243969ec2",
                         7581),
    "bottomwear/1.png": ("0674312eaa4ab548f8bb31ef95d7dbd46b41555758cec51bd6c3e9fac9a0f936",
                         8304),
    "bottomwear/2.png": ("3b464feb0d20ff34b0ca2a6d1fd00766ad86e2229c3d56ff91379fe27588a893",
                         7585),
    "bottomwear/3.png": ("b366e84ea0519d06cf693f51e0ee2f9ac32b3132d27c75dfdc4b6f52fca072de",
                         8227),
    "bottomwear/4.png": ("4ed7e7702e4f50b9692c0043be04b7296a108d85ea97230fb50d13c150d98771",
                         8322),
    "bottomwear/5.png": ("a5c5e7e33f13fe5ad37b5836a5a74fb0d2094a0877c2146961b88688ff85840d",
                         5375),
    "bottomwear/6.png": ("a50af1e08421c4fcc4b6365c75c81c8b328f0d4a7bf93b5a1cb97d45e3b72bde",
                         9132),
    "eyes/0.png": ("7a278e8fe89ea2af10f0bfeeb4eac39d1c785dc445a3cc8fbaa526f0b060a3b8", 1225),
    "eyes/1.png": ("a5c3a7929257c5a58d33ef31edff546cd90f91d376436432491a9f7cda12ed22", 926),
    "eyes/2.png": ("1bf864e03c357ab6f7fdce9a8da77ea2ec1c0c4fb84fd01d3bfa6be493e520cb", 1225),
    "eyes/3.png": ("7bb7d944c688022804e0a816533825b556c75ac3fc43b5ad05fa76d1a58a1669", 1225),
    "eyes/4.png": ("be95a908108064a17436783cea6a11ffde5ffd50dd9b60521d8788f6bbc9b51d", 1272),
    "hair/0.png": ("e4007b0635a239ad16cdebfe90759349ccc73dfc6836c9d19625714be185f43d", 8049),
    "hair/1.png": ("fa6369f84d3310705df6d8ca8c9d515a7d211e73d2826c50a9cb5bb285652c66", 8751),
    "hair/2.png": ("1b8046752be7233e829ebe9b11048e171d8d181ee6f68e07042b34f57bb8af0d", 8360),
    "hair/3.png": ("333783285c5fd94ff434ae5000d2da39aac7940269f173119eaa70d34c8acfa1", 8337),
    "hair/4.png": ("24df8e9b291cbd444f6c4d12d35b3d43d909cd13f04e6401e0fd8ab10216d5a2", 7363),
    "hair/5.png": ("4dd471cc20e0b1cf71adcaab01c88598767e5cfe680adacdf560ca91574f17ae", 8236),
    "hair/6.png": ("383c2297bf411091dfcb9e250c30912b97a13094fb2465987e961d475855d331", 4494),
    "hair/7.png": ("c4460119998811c4a1bcb8ccbb22f5d9a8ee84abe30880677e70b7106341e67d", 7363),
    "hair/8.png": ("ea2cd93e23bafd8962caf6f7e7e4c97e73f5742bd9527254abeb6ddfd510d34a", 8049),
    "hair/9.png": ("94939929ec5fc142671090a1d83b9e6f89784f3022925fad2e1e19c5dced133d", 8236),
    "shoes/0.png": ("f58fd946a82304ac49c9d824461ba343651106015bffdd2c71189131d28aadfc", 6334),
    "shoes/1.png": ("d56a561616a20a12030d2d40a52eeec63e6d048871bf3b6994221869362151f1", 5504),
    "shoes/2.png": ("faba8fc036f0494f144ff5dfd5185214f4138b4d39257da42186b0e60e5e2c5e", 5579),
    "topwear/0.png": ("b917edcf2b3c35d51ef57a6fad67557c5edf048785bea29db09a640d09ac9a90", 15643),
    "topwear/1.png": ("e33c6cb31ed1268a2c0dc73b665b1c9b9420e22baf3321880222bdb22682368b", 15643),
    "topwear/2.png": ("2b9b8fefa08894b7ea536cd62b86d494aefe6e54495c5c1d83460827b13b6448", 15643),
    "topwear/3.png": ("807f5b628592f6747e2814be9435963069dba6c360577168c02f57bbe903433d", 10561),
    "topwear/4.png": ("b51b17878503877e179ce4f9231713bf2b2d2d666c3ec9ee29f4e784469867a2", 10940),
    "topwear/5.png": ("1b6049d43f83ebfda857cc405d1936ac9fd80be480fa6ad239024a6a75ad0372", 25293),
    "topwear/6.png": ("b1da999190e2c41f2e5861d34adc551ad68016ecdcb125ab1371d8af8f7f36cb", 30053),
}

SHEETS: dict[str, OfficialFile] = {
    rel: OfficialFile(name=rel, url=_RAW + rel, sha256=s, size=n)
    for rel, (s, n) in _SHEET_SUMS.items()
}

STATIC_FACTOR_NAMES = ("body", "bottomwear", "topwear", "hair")
STATIC_FACTOR_SIZES = (6, 6, 6, 6)
ACTIONS = ("walk", "spellcard", "slash")
DIRECTIONS = ("front", "left", "right")
ACTION_NAMES = tuple(f"{a}_{d}" for a in ACTIONS for d in DIRECTIONS)
NUM_ACTIONS = 9
NUM_CHARACTERS = 1296
NUM_TRAIN_CHARACTERS = 1000
SPLIT_SEED = 423
T, C, H, W = 8, 3, 64, 64
TILE = 64

# Sheets the recipe reads: attribute sheets 0..5 and shoes/1.
USED_SHEETS = tuple(f"{a}/{k}.png" for a in STATIC_FACTOR_NAMES for k in range(6)) + (
    "shoes/1.png",
)

# Sheet rows per action and direction (front, left, right) and the 8 columns per sequence.
_ROWS = {"walk": (10, 9, 11), "spellcard": (2, 1, 3), "slash": (14, 13, 15)}
_COLUMNS = {
    "walk": (8, 1, 2, 3, 4, 5, 6, 7),
    "spellcard": (0, 1, 2, 3, 4, 5, 4, 6),
    "slash": (0, 1, 2, 3, 4, 5, 4, 0),
}
RECIPE_VERSION = "lpc1"
TWIN_VERSION = "v1"


# --------------------------------------------------------------------------- labels/split

def character_attributes(characters: Any) -> np.ndarray:
    """Static labels ``(body, bottomwear, topwear, hair)`` of character indices, int64 (n, 4)."""
    c = np.asarray(characters, dtype=np.int64)
    if c.size and (c.min() < 0 or c.max() >= NUM_CHARACTERS):
        raise ValueError(f"characters must lie in 0..{NUM_CHARACTERS - 1}")
    return np.stack([c // 216, (c // 36) % 6, (c // 6) % 6, c % 6], axis=-1)


def split_characters(split: str) -> np.ndarray:
    """Character indices of a split, in the order of Li & Mandt's permutation (seed 423)."""
    perm = np.random.RandomState(SPLIT_SEED).permutation(NUM_CHARACTERS)
    if split == "train":
        return perm[:NUM_TRAIN_CHARACTERS].astype(np.int64)
    if split == "test":
        return perm[NUM_TRAIN_CHARACTERS:].astype(np.int64)
    raise DisbenchError(f"sprites has splits 'train' and 'test', got split={split!r}")


def sequence_labels(characters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of the character-major sequence order: ``(characters, static, action)``.

    Row ``9 * j + a`` is character ``characters[j]`` doing action label ``a``.
    """
    characters = np.asarray(characters, dtype=np.int64)
    chars = np.repeat(characters, NUM_ACTIONS)
    actions = np.tile(np.arange(NUM_ACTIONS, dtype=np.int64), len(characters))
    return chars, character_attributes(chars), actions


def _select_characters(split: str, max_characters: int | None) -> np.ndarray:
    chars = split_characters(split)
    if max_characters is not None:
        if int(max_characters) < 1:
            raise DisbenchError(f"max_characters must be >= 1, got {max_characters}")
        chars = chars[: int(max_characters)]
    return chars


# --------------------------------------------------------------------------- official render

def _sheet_dir_problems(folder: Path, names: Iterable[str]) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


class SheetRenderer:
    """Composites LPC sheets into Sprites sequences (Li & Mandt 2018 recipe).

    Parameters
    ----------
    folder : path
        A folder laid out like the repository (``body/0.png``, ..., ``shoes/1.png``).
    verify_sums : bool
        Check each used sheet's sha256 before use.
    """

    def __init__(self, folder: str | Path, *, verify_sums: bool = True) -> None:
        from PIL import Image

        self.folder = Path(folder)
        missing = _sheet_dir_problems(self.folder, USED_SHEETS)
        if missing:
            raise DisbenchError(
                f"{self.folder}: missing sprite sheets {', '.join(missing)}; run "
                f"'disbench datasets prepare sprites' or import a copy of YingzhenLi/Sprites "
                f"(commit {LPC_COMMIT}) with 'disbench datasets import sprites DIR'"
            )
        self._rows = sorted({r for rows in _ROWS.values() for r in rows})
        self._layers: dict[str, Any] = {}
        for rel in USED_SHEETS:
            path = self.folder / rel
            if verify_sums:
                verify(path, SHEETS[rel])
            with Image.open(path) as im:
                im = im.convert("RGBA")
                if im.size != (13 * TILE, 21 * TILE):
                    raise DisbenchError(
                        f"{path}: sheet is {im.size[0]}x{im.size[1]}, expected 832x1344"
                    )
                self._layers[rel] = self._strip(im)

    def _strip(self, im: Any) -> Any:
        # Alpha compositing is per pixel, so compositing only the 9 used rows gives the same
        # pixels as compositing the full sheet and cropping afterwards.
        from PIL import Image

        out = Image.new("RGBA", (13 * TILE, len(self._rows) * TILE))
        for k, r in enumerate(self._rows):
            out.paste(im.crop((0, r * TILE, 13 * TILE, (r + 1) * TILE)), (0, k * TILE))
        return out

    def composite(self, character: int) -> np.ndarray:
        """The composited rows of one character, uint8 (rows*64, 832, 4)."""
        from PIL import Image

        body, bottom, top, hair = (int(v) for v in character_attributes(character))
        first = self._layers["body/0.png"]
        canvas = Image.new("RGBA", first.size, "black")
        for rel in (f"body/{body}.png", f"bottomwear/{bottom}.png", f"topwear/{top}.png",
                    f"hair/{hair}.png", "shoes/1.png"):
            canvas = Image.alpha_composite(canvas, self._layers[rel])
        return np.asarray(canvas)

    def render(self, characters: Iterable[int]) -> np.ndarray:
        """Sequences of ``characters``, character-major: uint8 (9 * n, T, C, H, W)."""
        characters = [int(c) for c in characters]
        out = np.empty((len(characters), NUM_ACTIONS, T, C, H, W), dtype=np.uint8)
        row_of = {r: k for k, r in enumerate(self._rows)}
        for j, c in enumerate(characters):
            img = self.composite(c)[..., :3]
            # (rows, 64, 13, 64, 3) -> tiles[row, col] as (3, 64, 64)
            tiles = img.reshape(len(self._rows), TILE, 13, TILE, 3).transpose(0, 2, 4, 1, 3)
            for a, action in enumerate(ACTIONS):
                cols = np.asarray(_COLUMNS[action])
                for d in range(len(DIRECTIONS)):
                    out[j, 3 * a + d] = tiles[row_of[_ROWS[action][d]], cols]
        return out.reshape(len(characters) * NUM_ACTIONS, T, C, H, W)


def sheets_fingerprint() -> str:
    """A short id of the official data: the recipe version and the used sheets' sums."""
    h = hashlib.sha256(RECIPE_VERSION.encode())
    for rel in USED_SHEETS:
        h.update(SHEETS[rel].sha256.encode())
    return f"lpc-{h.hexdigest()[:12]}"


# --------------------------------------------------------------------------- twin render

_TWIN_PALETTES = {
    # skin tones
    "body": [(255, 219, 172), (241, 194, 125), (198, 134, 66), (141, 85, 36),
             (120, 200, 120), (170, 170, 230)],
    "bottomwear": [(40, 60, 160), (30, 30, 30), (150, 40, 40), (90, 130, 60),
                   (200, 180, 120), (120, 120, 120)],
    "topwear": [(220, 40, 40), (40, 160, 220), (240, 240, 240), (60, 160, 60),
                (160, 60, 200), (240, 200, 40)],
    "hair": [(20, 20, 20), (120, 70, 20), (240, 220, 120), (200, 60, 20),
             (230, 230, 230), (60, 100, 220)],
}
# Part ids of the label maps.
_BG, _SKIN, _PANTS, _TOP, _TOP2, _HAIR, _EYE, _SHOE, _HAIR_LONG = range(9)
_NUM_PARTS = 9


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rect(yy: np.ndarray, xx: np.ndarray, y0: float, y1: float, x0: float,
          x1: float) -> np.ndarray:
    return (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)


def _segment(yy: np.ndarray, xx: np.ndarray, p: tuple[float, float], angle: float,
             length: float, width: float) -> np.ndarray:
    # Pixels within width/2 of the segment from p in direction angle (0 = down, + = to the
    # character's right on screen).
    dy, dx = np.cos(angle), np.sin(angle)
    vy, vx = yy - p[0], xx - p[1]
    t = np.clip(vy * dy + vx * dx, 0.0, length)
    return (vy - t * dy) ** 2 + (vx - t * dx) ** 2 <= (width / 2) ** 2


def _pose_params(action: str, direction: str, frame: int) -> dict[str, float]:
    # Limb angles (radians) per frame: a walk cycle, a two-arm spell raise, a one-arm slash.
    col = _COLUMNS[action][frame]
    side = {"front": 0.0, "left": -1.0, "right": 1.0}[direction]
    # Arm angles: 0 points down, negative swings to the screen left, positive to the right.
    p = {"bob": 0.0, "arm_l": -0.15, "arm_r": 0.15, "leg_l": 0.0, "leg_r": 0.0, "lift_l": 0.0,
         "lift_r": 0.0, "shift": 0.0}
    if action == "walk":
        phase = 2 * np.pi * (col % 8) / 8
        swing = 0.55 * np.sin(phase)
        p["bob"] = -1.0 * abs(np.sin(phase))
        p["shift"] = side * 2.0 * np.sin(phase / 2)
        if side == 0.0:  # from the front: legs lift alternately
            p["lift_l"], p["lift_r"] = 3 * max(np.sin(phase), 0), 3 * max(-np.sin(phase), 0)
            p["arm_l"], p["arm_r"] = -0.15 + 0.3 * swing, 0.15 + 0.3 * swing
        else:  # from the side: legs and arms swing along the facing direction
            p["leg_l"], p["leg_r"] = side * swing, -side * swing
            p["arm_l"], p["arm_r"] = -side * swing, side * swing
    elif action == "spellcard":
        raise_ = min(col, 5) / 5.0
        p["arm_l"], p["arm_r"] = -(0.15 + 2.6 * raise_), 0.15 + 2.6 * raise_
        if col == 6:
            p["arm_l"], p["arm_r"] = -1.4, 1.4
    else:  # slash: one arm sweeps from overhead to forward-down
        sweep = [2.8, 2.4, 1.8, 1.2, 0.6, 0.2][min(col, 5)]
        facing = side if side != 0.0 else 1.0
        p["arm_r"] = facing * sweep
        p["shift"] = side * 1.5 * min(col, 5) / 5
    return p


def _pose_map(action: str, direction: str, frame: int, yy: np.ndarray,
              xx: np.ndarray) -> np.ndarray:
    p = _pose_params(action, direction, frame)
    side = {"front": 0.0, "left": -1.0, "right": 1.0}[direction]
    cx = 32.0 + p["shift"]
    by = p["bob"]
    m = np.full(yy.shape, _BG, dtype=np.int8)
    half = 7.0 if side == 0.0 else 5.0
    # legs and shoes
    for dx, ang, lift in ((-3.0, p["leg_l"], p["lift_l"]), (3.0, p["leg_r"], p["lift_r"])):
        hip = (40.0 + by, cx + (dx if side == 0.0 else dx / 3))
        length = 13.0 - lift
        m[_segment(yy, xx, hip, ang, length, 5.0)] = _PANTS
        foot = (hip[0] + length * np.cos(ang), hip[1] + length * np.sin(ang))
        m[_disc(yy, xx, foot[0] + 1, foot[1] + side * 1.5, 2.6)] = _SHOE
    # torso with a stripe (top pattern colour)
    torso = _rect(yy, xx, 26 + by, 41 + by, cx - half, cx + half)
    m[torso] = _TOP
    m[torso & (((yy - by).astype(int) // 3) % 3 == 0)] = _TOP2
    # arms (skin), drawn after the torso so raised arms show over it
    for dx, ang in ((-half - 1.0, p["arm_l"]), (half + 1.0, p["arm_r"])):
        shoulder = (28.0 + by, cx + (dx if side == 0.0 else dx / 2))
        m[_segment(yy, xx, shoulder, ang, 11.0, 3.6)] = _SKIN
    # long hair behind the head (coloured only for long-haired characters), head, hair cap
    back = _rect(yy, xx, 14 + by, 31 + by, cx - 9 - 3 * side, cx + 9 - 3 * side)
    if side:
        back &= ~_rect(yy, xx, 0, 63, cx - 8 + 9 * side, cx + 8 + 9 * side)
    m[back] = _HAIR_LONG
    m[_disc(yy, xx, 18 + by, cx + 1.5 * side, 7.5)] = _SKIN
    m[_disc(yy, xx, 16 + by, cx - 1.0 * side, 8.0) & (yy <= 15 + by)] = _HAIR
    eyes = ((-3.0, 3.0) if side == 0.0 else (4.5 * side,))
    for ex in eyes:
        m[_rect(yy, xx, 18 + by, 19 + by, cx + 1.5 * side + ex - 0.5,
                cx + 1.5 * side + ex + 0.5)] = _EYE
    return m


def twin_pose_maps() -> np.ndarray:
    """Part-label maps of the twin's 72 motion frames: int8 (9, T, H, W)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    maps = np.empty((NUM_ACTIONS, T, H, W), dtype=np.int8)
    for a, action in enumerate(ACTIONS):
        for d, direction in enumerate(DIRECTIONS):
            for f in range(T):
                maps[3 * a + d, f] = _pose_map(action, direction, f, yy, xx)
    return maps


def twin_palettes(characters: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per-character part colours, uint8 (n, parts, 3); the seed jitters the base colours."""
    rng = np.random.default_rng(seed)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in _TWIN_PALETTES.items()}
    if seed:
        for k, v in base.items():
            base[k] = np.clip(v + rng.integers(-12, 13, size=v.shape), 0, 255)
    attrs = character_attributes(characters)
    n = len(attrs)
    pal = np.zeros((n, _NUM_PARTS, 3), dtype=np.float64)
    pal[:, _SKIN] = base["body"][attrs[:, 0]]
    pal[:, _PANTS] = base["bottomwear"][attrs[:, 1]]
    pal[:, _TOP] = base["topwear"][attrs[:, 2]]
    # tops 0..2 are plain, 3..5 striped with a darker shade
    stripe = np.where(attrs[:, 2:3] >= 3, 0.45, 1.0)
    pal[:, _TOP2] = base["topwear"][attrs[:, 2]] * stripe
    pal[:, _HAIR] = base["hair"][attrs[:, 3]]
    # hair 0, 2, 4 short (no long hair behind the head), 1, 3, 5 long
    long_hair = (attrs[:, 3] % 2 == 1)[:, None]
    pal[:, _HAIR_LONG] = np.where(long_hair, base["hair"][attrs[:, 3]], 0.0)
    pal[:, _EYE] = (10.0, 10.0, 40.0)
    pal[:, _SHOE] = (90.0, 50.0, 20.0)
    return pal.round().astype(np.uint8)


def render_twin(characters: Any, seed: int = 0) -> np.ndarray:
    """Twin sequences of ``characters``, character-major: uint8 (9 * n, T, C, H, W)."""
    chars = np.asarray(characters, dtype=np.int64)
    maps = twin_pose_maps().astype(np.intp)  # (9, T, H, W)
    pal = twin_palettes(chars, seed)  # (n, parts, 3)
    # One table lookup per character and channel covers all 72 frames and writes straight
    # into the channels-first layout (faster than one 6-D gather plus a transpose).
    pal_c = np.ascontiguousarray(pal.transpose(0, 2, 1))  # (n, 3, parts)
    img = np.empty((len(chars), NUM_ACTIONS, T, C, H, W), dtype=np.uint8)
    for j in range(len(chars)):
        for c in range(C):
            img[j, :, :, c] = pal_c[j, c][maps]
    return img.reshape(len(chars) * NUM_ACTIONS, T, C, H, W)


# --------------------------------------------------------------------------- storage

def _write_h5(path: Path, chunks: Iterable[np.ndarray], n: int, characters: np.ndarray,
              static: np.ndarray, actions: np.ndarray, attrs: dict[str, str]) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        # contiguous and uncompressed so the file can be memory-mapped
        ds = f.create_dataset("images", shape=(n, T, C, H, W), dtype=np.uint8)
        i = 0
        for block in chunks:
            ds[i:i + len(block)] = block
            i += len(block)
        if i != n:
            raise RuntimeError(f"wrote {i} of {n} sequences")
        f.create_dataset("characters", data=characters.astype(np.int64))
        f.create_dataset("static_labels", data=static.astype(np.int64))
        f.create_dataset("action_labels", data=actions.astype(np.int64))
        for k, v in attrs.items():
            f.attrs[k] = v


def _read_h5(path: Path) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            images = f["images"]
            shape, offset = images.shape, images.id.get_offset()
            out = {k: f[k][()] for k in ("characters", "static_labels", "action_labels")}
            out["attrs"] = {k: str(v) for k, v in f.attrs.items()}
            if offset is None or images.chunks is not None or images.compression:
                out["images"] = images[()]
            else:
                out["images"] = None
    except (OSError, KeyError) as exc:
        raise DisbenchError(
            f"{path}: unreadable sprites cache file ({exc}); delete it and run "
            f"'disbench datasets prepare sprites' again"
        ) from exc
    if out["images"] is None:
        out["images"] = (np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=shape)
                         if shape[0] else np.zeros(shape, np.uint8))
    return out


# --------------------------------------------------------------------------- dataset object

@dataclass
class SpritesData:
    """A split of Sprites sequences.

    Attributes
    ----------
    images : uint8 array (N, T, C, H, W) in 0..255 (numpy array or memmap).
    static_labels : int64 (N, 4): body, bottomwear, topwear, hair.
    action_labels : int64 (N,): ``3 * action + direction`` in 0..8.
    characters : int64 (N,): the character index ``216 b + 36 p + 6 t + h``.
    """

    images: Any
    static_labels: np.ndarray
    action_labels: np.ndarray
    characters: np.ndarray
    source: str
    split: str
    fingerprint: str
    name: str = "sprites"
    T: int = T
    binary: bool = False
    static_factor_names: tuple[str, ...] = STATIC_FACTOR_NAMES
    static_factor_sizes: tuple[int, ...] = STATIC_FACTOR_SIZES
    dynamic_factor_names: tuple[str, ...] = ("action",)
    dynamic_factor_sizes: tuple[int, ...] = (NUM_ACTIONS,)
    action_names: tuple[str, ...] = ACTION_NAMES
    num_actions: int = NUM_ACTIONS
    #: the split was cut to its first k characters (None: the whole split)
    max_characters: int | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.shape[1:] != (T, C, H, W) or self.images.dtype != np.uint8:
            raise DisbenchError(
                f"sprites images must be uint8 (N, {T}, {C}, {H}, {W}), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.static_labels.shape != (n, 4) or self.action_labels.shape != (n,):
            raise DisbenchError("sprites labels do not match the number of sequences")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (C, H, W)

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Static factors then the action: the columns of :attr:`factors`."""
        return self.static_factor_names + self.dynamic_factor_names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.static_factor_sizes + self.dynamic_factor_sizes

    @property
    def factors(self) -> np.ndarray:
        """int64 (N, 5): body, bottomwear, topwear, hair, action."""
        return np.concatenate([self.static_labels, self.action_labels[:, None]], axis=1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        import torch

        x = torch.from_numpy(np.array(self.images[i], dtype=np.uint8))
        target = {
            "static": torch.from_numpy(self.static_labels[i].copy()),
            "action": torch.tensor(int(self.action_labels[i])),
        }
        return x, target

    def tensor(self, device: Any = "cpu") -> Any:
        """The whole split as one uint8 tensor (N, T, C, H, W) on ``device``."""
        import torch

        arr = self.images
        if not (isinstance(arr, np.ndarray) and arr.flags.writeable and arr.flags.c_contiguous):
            arr = np.array(arr, dtype=np.uint8)  # a read-only memmap: copy into memory once
        return torch.from_numpy(arr).to(device)

    def __repr__(self) -> str:
        return (f"SpritesData(split={self.split!r}, source={self.source!r}, n={len(self)}, "
                f"fingerprint={self.fingerprint!r})")


def _official_dir() -> Path:
    return dataset_dir("sprites") / "official"


def _sheets_dir() -> Path:
    return _official_dir() / "sheets"


def _subset_suffix(max_characters: int | None) -> str:
    return "" if max_characters is None else f"-first{int(max_characters)}"


def _h5_name(split: str, max_characters: int | None) -> str:
    return f"sprites_{split}{_subset_suffix(max_characters)}.h5"


def _twin_path(split: str, seed: int, max_characters: int | None) -> Path:
    return (dataset_dir("sprites") / "synthetic"
            / f"synthetic-{TWIN_VERSION}-seed{int(seed)}-{_h5_name(split, max_characters)}")


def _build_official_h5(split: str, max_characters: int | None, *,
                       progress: bool = True) -> Path:
    from tqdm.auto import tqdm

    chars = _select_characters(split, max_characters)
    renderer = SheetRenderer(_sheets_dir(), verify_sums=True)
    allc, static, actions = sequence_labels(chars)
    path = _official_dir() / _h5_name(split, max_characters)
    block = 50

    def chunks() -> Iterable[np.ndarray]:
        for s in tqdm(range(0, len(chars), block), desc=f"rendering sprites {split}",
                      disable=not progress, leave=False):
            yield renderer.render(chars[s:s + block])

    _write_h5(path, chunks(), len(allc), allc, static, actions,
              {"fingerprint": sheets_fingerprint() + _subset_suffix(max_characters),
               "source": "official"})
    log.info("rendered %d sprites sequences to %s", len(allc), path)
    return path


@register("sprites")
class Sprites(DatasetSpec):
    """Sprites (Li & Mandt 2018): 8-frame videos of LPC characters, 4 static + 1 action factor.

    The official files are the LPC sprite sheets; a split's videos are rendered from them
    once (``prepare``, or the first load) into an HDF5 cache. ``import`` also takes the
    C-DSVAE ``.npy`` arrays, converted to that cache.
    """

    summary = ("Sprites videos (Li & Mandt 2018): 9000/2664 sequences of 8 64x64 RGB frames, "
               "4 static attributes x 6, 9 actions")
    kind = "sequence"
    homepage = "https://github.com/YingzhenLi/Sprites"
    licence = "LPC sheets: CC-BY-SA 3.0 / GPL 3.0"
    citation = ("Yingzhen Li, Stephan Mandt. Disentangled Sequential Autoencoder. ICML 2018")
    files = tuple(SHEETS.values())
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": USED_SHEETS, "test": USED_SHEETS}
    default_split = "train"
    split_sizes: ClassVar[dict[str, int]] = {
        "train": NUM_TRAIN_CHARACTERS * NUM_ACTIONS,
        "test": (NUM_CHARACTERS - NUM_TRAIN_CHARACTERS) * NUM_ACTIONS}
    observation_shape = (T, C, H, W)
    labels_note = (f"static_labels (body, bottomwear, topwear, hair; 6 each) and action_labels "
                   f"(3 * action + direction: {', '.join(ACTION_NAMES)})")
    twin_version = TWIN_VERSION
    twin_summary = ("procedural characters (4 static attributes x 6 options) doing the same 9 "
                    "motions of 8 frames; same shapes, labels and split")
    options: ClassVar[dict[str, Option]] = {
        "progress": PROGRESS, "seed": SEED,
        "max_characters": Option("keep the first k characters of the split (9 k sequences)")}

    @classmethod
    def files_folder(cls) -> Path:
        return _sheets_dir()

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        return dict(zip(STATIC_FACTOR_NAMES + ("action",), STATIC_FACTOR_SIZES + (NUM_ACTIONS,),
                        strict=True))

    @classmethod
    def official_available(cls, split: str | None = None) -> bool:
        """The rendered split is cached, or the sheets it is rendered from are."""
        split = cls.check_split(split)
        return (_official_dir() / _h5_name(split, None)).is_file() or \
            super().official_available(split)

    @classmethod
    def twin_cached(cls) -> list[str]:
        return [s for s in cls.splits if _twin_path(s, 0, None).is_file()]

    @classmethod
    def load_official(cls, split: str | None = None, max_characters: int | None = None,
                      progress: bool = True) -> SpritesData:
        """Load a split, rendering it from the cached sheets on first use.

        ``max_characters`` keeps the first k characters of the split (9 k sequences).
        """
        split = cls.check_split(split)
        full = _official_dir() / _h5_name(split, None)
        path = full if full.is_file() else _official_dir() / _h5_name(split, max_characters)
        if not path.is_file():
            missing = _sheet_dir_problems(_sheets_dir(), USED_SHEETS)
            if missing:
                spec = SHEETS[missing[0]]
                raise DisbenchError(
                    f"missing official sprites file {spec.name}: download it from {spec.url} "
                    f"and place it at {_sheets_dir() / spec.name}, or run 'disbench datasets "
                    f"prepare sprites' (downloads the {len(USED_SHEETS)} sheets) or 'disbench "
                    f"datasets import sprites DIR'"
                )
            path = _build_official_h5(split, max_characters, progress=progress)
        data = _read_h5(path)
        ds = SpritesData(images=data["images"], static_labels=data["static_labels"],
                         action_labels=data["action_labels"], characters=data["characters"],
                         source="official", split=split,
                         fingerprint=data["attrs"].get("fingerprint", "unknown"),
                         max_characters=None if path == full else max_characters)
        if path == full and max_characters is not None:
            ds = _first_characters(ds, max_characters)
        return ds

    @classmethod
    def load_synthetic(cls, split: str | None = None, seed: int = 0,
                       max_characters: int | None = None, progress: bool = True) -> SpritesData:
        """The procedural twin (rendered once and cached as HDF5).

        ``max_characters`` keeps the first k characters of the split (9 k sequences), rendering
        only those: tests use a few characters.
        """
        split = cls.check_split(split)
        chars = _select_characters(split, max_characters)
        fingerprint = f"synthetic-{TWIN_VERSION}-seed{int(seed)}"
        path = _twin_path(split, seed, max_characters)
        if not path.is_file():
            from tqdm.auto import tqdm

            allc, static, actions = sequence_labels(chars)
            block = 100
            starts = tqdm(range(0, len(chars), block), desc=f"rendering sprites twin {split}",
                          disable=not progress or len(chars) <= block, leave=False)
            _write_h5(path, (render_twin(chars[s:s + block], seed) for s in starts),
                      len(allc), allc, static, actions,
                      {"fingerprint": fingerprint + _subset_suffix(max_characters),
                       "source": "synthetic"})
        data = _read_h5(path)
        return SpritesData(images=data["images"], static_labels=data["static_labels"],
                           action_labels=data["action_labels"], characters=data["characters"],
                           source="synthetic", split=split,
                           fingerprint=fingerprint + _subset_suffix(max_characters),
                           max_characters=max_characters)

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          render: bool = True) -> list[Path]:
        """Render the splits from the verified sheets (``render=False``: only the sheets;
        a split is then rendered on first load)."""
        out = []
        for split in splits if render else ():
            path = _official_dir() / _h5_name(split, None)
            if not path.is_file():
                _build_official_h5(split, None, progress=progress)
            out.append(path)
        return out

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        kwargs = cls.load_options("synthetic", options)
        for split in splits:
            cls.load_synthetic(split, progress=progress, **kwargs)
        return [_twin_path(split, kwargs.get("seed", 0), kwargs.get("max_characters"))
                for split in splits]

    @classmethod
    def _import_files(cls, src: Path) -> list[str]:
        """A sheet folder (``body/0.png`` ..., or one holding ``sprites_lpc/``) or the six
        C-DSVAE ``.npy`` arrays; the cached file names."""
        if (src / "body").is_dir() or (src / "sprites_lpc").is_dir():
            sheets = src if (src / "body").is_dir() else src / "sprites_lpc"
            return [str(p.relative_to(_sheets_dir())) for p in _import_sheets(sheets)]
        if any((src / f"sprites_X_{s}.npy").is_file() for s in ("train", "test")):
            return [p.name for p in _import_npy(src)]
        raise DisbenchError(
            f"{src}: found neither LPC sprite sheets (body/0.png, bottomwear/0.png, ..., "
            f"shoes/1.png as in YingzhenLi/Sprites) nor the arrays sprites_X_train.npy, "
            f"sprites_A_train.npy, sprites_D_train.npy (and _test)"
        )


def _first_characters(ds: SpritesData, k: int) -> SpritesData:
    n = NUM_ACTIONS * int(k)
    return SpritesData(images=ds.images[:n], static_labels=ds.static_labels[:n],
                       action_labels=ds.action_labels[:n], characters=ds.characters[:n],
                       source=ds.source, split=ds.split,
                       fingerprint=f"{ds.fingerprint}-first{int(k)}", max_characters=int(k))


def _import_sheets(src: Path) -> list[Path]:
    missing = _sheet_dir_problems(src, USED_SHEETS)
    if missing:
        raise DisbenchError(
            f"{src}: missing sprite sheets {', '.join(missing)} (a folder laid out like "
            f"YingzhenLi/Sprites commit {LPC_COMMIT}: body/0.png ... shoes/1.png)"
        )
    out = []
    for rel, spec in SHEETS.items():
        path = src / rel
        if not path.is_file():
            continue
        verify(path, spec)
        dest = _sheets_dir() / rel
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
        out.append(dest)
    log.info("imported %d sprite sheets into %s", len(out), _sheets_dir())
    return out


def _import_npy(folder: Path) -> list[Path]:
    out = []
    h = hashlib.sha256(b"npy1")
    for split in ("train", "test"):
        for k in "XAD":
            p = folder / f"sprites_{k}_{split}.npy"
            if p.is_file():
                h.update(_quick_hash(p).encode())
    for split in ("train", "test"):
        names = [folder / f"sprites_{k}_{split}.npy" for k in "XAD"]
        missing = [str(p) for p in names if not p.is_file()]
        if missing:
            raise DisbenchError(f"missing {', '.join(missing)} (need X, A and D for {split})")
        x = np.load(names[0], mmap_mode="r")
        a = np.load(names[1], mmap_mode="r")
        d = np.load(names[2], mmap_mode="r")
        n = x.shape[0]
        if x.ndim != 5 or x.shape[1:] != (T, H, W, C):
            raise DisbenchError(f"{names[0]}: expected shape (N, 8, 64, 64, 3), got {x.shape}")
        if a.shape != (n, T, 4, 6):
            raise DisbenchError(f"{names[1]}: expected shape ({n}, 8, 4, 6), got {a.shape}")
        if d.shape != (n, T, NUM_ACTIONS):
            raise DisbenchError(f"{names[2]}: expected shape ({n}, 8, 9), got {d.shape}")
        a0, d0 = np.asarray(a[:, 0]), np.asarray(d[:, 0])
        if not (np.all(a0.sum(-1) == 1) and np.all(d0.sum(-1) == 1)):
            raise DisbenchError(f"{names[1]} / {names[2]}: labels are not one-hot")
        static = a0.argmax(-1).astype(np.int64)
        actions = d0.argmax(-1).astype(np.int64)
        chars = static @ np.array([216, 36, 6, 1], dtype=np.int64)

        def chunks(x: np.ndarray = x, n: int = n, name: Path = names[0]
                   ) -> Iterable[np.ndarray]:
            for s in range(0, n, 500):
                blk = np.asarray(x[s:s + 500], dtype=np.float64)
                if blk.min() < 0 or blk.max() >= 1:
                    raise DisbenchError(f"{name}: values must lie in [0, 1)")
                # the arrays are uint8 / 256
                yield np.rint(blk * 256).astype(np.uint8).transpose(0, 1, 4, 2, 3)

        path = _official_dir() / _h5_name(split, None)
        _write_h5(path, chunks(), n, chars, static, actions,
                  {"fingerprint": f"npy-{h.hexdigest()[:12]}", "source": "official"})
        out.append(path)
    return out


def _quick_hash(path: Path) -> str:
    from disbench.datasets.download import file_hash

    return file_hash(path)
