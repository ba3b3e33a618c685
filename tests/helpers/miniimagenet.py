"""Format-true fixtures shared by tests (moved from data/test_miniimagenet_data.py)."""


from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = {"train": 6, "val": 3, "test": 4}



def write_miniimagenet(root: Path, classes: dict[str, int] | None = None, images: int = 5, size: int = 84,
                       seed: int = 0) -> Path:
    """`<root>/{train,val,test}.csv` (`filename,label`) over `<root>/images/<wnid><8 digits>.jpg`.

    Each class has its own colour and stripe orientation, each image noise and a shift on top.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    wnid = 1000000
    for split, n_classes in (classes or SPLITS).items():
        lines = ["filename,label"]
        for _ in range(n_classes):
            wnid += 1
            label = f"n{wnid:08d}"
            colour = rng.uniform(40, 215, size=3)
            axis = int(rng.integers(0, 2))
            for i in range(images):
                grid = np.indices((size, size))[axis] + rng.integers(0, 8)
                stripes = ((grid // 6) % 2)[..., None] * 60.0
                pixels = np.clip(colour + stripes + rng.normal(0, 12, size=(size, size, 3)), 0, 255)
                name = f"{label}{i + 1:08d}.jpg"
                Image.fromarray(pixels.astype(np.uint8), "RGB").save(root / "images" / name, quality=90)
                lines.append(f"{name},{label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root

