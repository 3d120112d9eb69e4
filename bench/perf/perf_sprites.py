"""Sprites: rendering the official dataset from the LPC sheets, and the twin.

Each figure is printed beside a straightforward counterpart run in the same process:

- official: compositing only the 9 sheet rows the recipe reads (once per character) and
  slicing all 72 tiles from one array, against compositing the full 832x1344 sheets and
  cropping each of the 72 frames with PIL, per character. Both give identical frames
  (checked). Needs the sheets (``$DISBENCH_REALDATA/sprites_lpc``); skipped otherwise.
- twin: one palette lookup per character and channel over all 72 motion frames against a loop
  colouring one frame at a time.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from disbench.datasets import sprites as S


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _full_sheet_render(folder: Path, c: int) -> np.ndarray:
    """The straightforward recipe: full-sheet composite, then one PIL crop per frame."""
    from PIL import Image

    b, p, t, h = (int(v) for v in S.character_attributes(c))
    canvas = Image.new("RGBA", (832, 1344), "black")
    for rel in (f"body/{b}.png", f"bottomwear/{p}.png", f"topwear/{t}.png", f"hair/{h}.png",
                "shoes/1.png"):
        with Image.open(folder / rel) as im:
            canvas = Image.alpha_composite(canvas, im.convert("RGBA"))
    out = np.empty((9, 8, 3, 64, 64), np.uint8)
    for a, action in enumerate(S.ACTIONS):
        for d in range(3):
            row = S._ROWS[action][d]
            for f, col in enumerate(S._COLUMNS[action]):
                tile = canvas.crop((col * 64, row * 64, (col + 1) * 64, (row + 1) * 64))
                out[3 * a + d, f] = np.asarray(tile)[..., :3].transpose(2, 0, 1)
    return out


def run(quick: bool) -> list[dict]:
    rows = []
    realdata = Path(os.environ.get("DISBENCH_REALDATA",
                                   Path(__file__).resolve().parents[2] / ".." / "shared"
                                   / "realdata"))
    folder = realdata / "sprites_lpc"
    chars = np.arange(0, 1296, 1296 // (12 if quick else 48))
    if (folder / "body" / "0.png").is_file():
        renderer = S.SheetRenderer(folder)
        fast = [None]
        slow = [None]
        t_fast = _time(lambda: fast.__setitem__(0, renderer.render(chars)))
        t_slow = _time(lambda: slow.__setitem__(
            0, np.concatenate([_full_sheet_render(folder, int(c)) for c in chars])))
        if not np.array_equal(fast[0], slow[0]):
            raise AssertionError("row-strip and full-sheet Sprites renderers disagree")
        per = 1296 * 9 / (len(chars) * 9)
        rows.append({"name": "sprites official render (11,664 sequences)",
                     "baseline": t_slow * per, "value": t_fast * per, "unit": "s",
                     "ratio": t_slow / t_fast,
                     "note": "9 used rows composited once vs full sheet + 72 PIL crops"})
    twin_chars = np.arange(0, 1296, 1296 // (24 if quick else 96))
    maps = S.twin_pose_maps()
    pal = S.twin_palettes(twin_chars)

    def loop():
        out = np.empty((len(twin_chars), 9, 8, 64, 64, 3), np.uint8)
        for j in range(len(twin_chars)):
            for a in range(9):
                for f in range(8):
                    out[j, a, f] = pal[j][maps[a, f]]
        return out

    t_loop = _time(loop)
    t_vec = _time(lambda: S.render_twin(twin_chars))
    per = 1296 / len(twin_chars)
    rows.append({"name": "sprites twin render (11,664 sequences)", "baseline": t_loop * per,
                 "value": t_vec * per, "unit": "s", "ratio": t_loop / t_vec,
                 "note": "one palette lookup per character and channel over all 72 frames "
                         "(incl. the pose maps) vs one lookup per frame (maps given)"})
    return rows
