"""Tiny labelled image sets written the way users and ImageNet store them: `<root>/<split>/<class>/<file>`.

Each class has its own colour and shape (0: red disc, 1: green square, 2: blue triangle, then further hues
and shapes), drawn at a random position on a noisy dark background and saved with Pillow (JPEG by default),
so a short training learns them well above chance.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def class_colour(label: int, n_classes: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(label / max(n_classes, 3), 0.85, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_image(label: int, n_classes: int, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of class `label`: its shape in its colour over background noise."""
    noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    draw = ImageDraw.Draw(image)
    r = int(rng.integers(size // 4, size // 3 + 1))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    colour = class_colour(label, n_classes)
    shape = label % 3
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def class_names(n_classes: int) -> list[str]:
    """WordNet-id-like folder names (as ImageNet's), sorted in label order."""
    return [f"n{i:08d}" for i in range(n_classes)]


def write_image_folder(root: Path, per_class: dict[str, int], n_classes: int = 3, size: int = 20,
                       ext: str = ".JPEG", seed: int = 0) -> Path:
    """`root/<split>/<class>/<i><ext>` with `per_class[split]` images per class; returns `root`."""
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for label, name in enumerate(class_names(n_classes)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw_image(label, n_classes, size, rng).save(folder / f"{split}_{i:04d}{ext}", quality=95)
    return root


def image_rows(per_class: int, n_classes: int = 3, size: int = 20, seed: int = 0) -> dict[str, list]:
    """Columns for `datasets.Dataset.from_dict`: PIL images and int labels."""
    rng = np.random.default_rng(seed)
    labels = [label for label in range(n_classes) for _ in range(per_class)]
    return {"image": [draw_image(label, n_classes, size, rng) for label in labels], "label": labels}
