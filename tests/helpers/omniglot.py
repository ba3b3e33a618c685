"""Format-true fixtures shared by tests (moved from data/test_omniglot_data.py)."""


from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def draw_character(strokes: np.ndarray, rng: np.random.Generator, size: int = 105) -> Image.Image:
    """One drawing of a character: its strokes (class-dependent) with a small per-drawing jitter."""
    img = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(img)
    dx, dy = rng.integers(-5, 6, size=2)
    for x0, y0, x1, y1 in strokes:
        pen.line([(x0 + dx, y0 + dy), (x1 + dx, y1 + dy)], fill=0, width=int(rng.integers(6, 10)))
    return img.convert("1")  # the official files are 1-bit 105x105 PNGs



def write_omniglot(root: Path, background: int = 12, evaluation: int = 8, drawings: int = 4,
                   alphabets: int = 2, seed: int = 0) -> Path:
    """`<root>/images_{background,evaluation}/<alphabet>/characterNN/<id>_NN.png`, shapes fixed per character."""
    rng = np.random.default_rng(seed)
    char_id = 0
    for folder, n_chars in (("images_background", background), ("images_evaluation", evaluation)):
        for c in range(n_chars):
            char_dir = root / folder / f"{folder[7:]}_alphabet{c % alphabets}" / f"character{c // alphabets + 1:02d}"
            char_dir.mkdir(parents=True)
            strokes = rng.integers(15, 90, size=(3, 4))
            char_id += 1
            for d in range(drawings):
                draw_character(strokes, rng).save(char_dir / f"{char_id:04d}_{d + 1:02d}.png")
    return root

