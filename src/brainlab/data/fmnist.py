"""Fashion-MNIST (`data=fmnist`) from the standard idx-ubyte files, encoded to spike latencies.

Files (gzipped or not) under `data.root`: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (Xiao, Rasul & Vollgraf 2017; 60,000 + 10,000 images of
28 x 28, 10 classes). Read here with numpy (no torchvision); `data.download=true` fetches the `.gz` files
from the standard mirrors and checks their md5.

Encoding (`LatencyEncoding`), as in the FastSNN paper's F-MNIST setup (Taylor, King & Harper 2022, after
Zenke & Vogels 2021): each pixel of intensity `x` in [0, 1] spikes once at `t = tau * ln(x / (x - thr))`
steps when `x > thr` (brighter -> earlier; dark pixels never spike), if `t < n_time_bins`. Samples are
`(frames (T, 1, 28, 28) float32, label)` and go through the shared event path (splits, cache, loaders).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import missing_data
from brainlab.data.events import EventDataModule

log = logging.getLogger(__name__)

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: md5 of the published `.gz` files (as torchvision and the Fashion-MNIST README list them)
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FULL_SIZES = {"train": 60000, "test": 10000}
#: idx magic numbers: 0x0000 0803 = uint8 with 3 dims (images), 0x0000 0801 = uint8 with 1 dim (labels)
MAGIC = {3: 0x00000803, 1: 0x00000801}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx-ubyte file (plain or `.gz`) as a uint8 array with `ndim` dims; refuses malformed files."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read ({exc}): delete it and download it again "
                        "(data.download=true)") from None
    header = 4 + 4 * ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != MAGIC[ndim]:
        found = "nothing" if magic is None else f"0x{magic:08x}"
        raise DataError(f"{path} is not an idx-ubyte file with {ndim} dimension(s) (magic number {found}, "
                        f"expected 0x{MAGIC[ndim]:08x}): replace it with the Fashion-MNIST file of that name")
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header cut short): download it again (data.download=true)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} has {len(raw)} bytes, its header {list(dims)} says {expected}: the file is "
                        "truncated or corrupt; download it again (data.download=true)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(folder: Path, names: list[str], mirrors: tuple[str, ...] = MIRRORS, timeout: float = 60.0) -> None:
    """Fetch the `.gz` files `names` into `folder` (temp file, md5 check, then rename; nothing overwritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = folder / name
        if target.exists():
            continue
        errors = []
        for mirror in mirrors:
            tmp = folder / f".{name}.{os.getpid()}.part"
            try:
                with urllib.request.urlopen(mirror + name, timeout=timeout) as response, open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
                got, size = md5sum(tmp), tmp.stat().st_size
                if got != MD5[name]:
                    raise ValueError(f"md5 {got} (size {size} B; an HTML error page?) != {MD5[name]}")
                os.replace(tmp, target)
                break
            except Exception as exc:  # noqa: BLE001 - any network or check failure: next mirror, then one line
                errors.append(f"{urllib.parse.urlparse(mirror).netloc}: {type(exc).__name__}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DataError(
                f"fmnist: download of {name} failed ({'; '.join(errors)}); download it by hand from "
                f"{mirrors[0]}{name} (md5 {MD5[name]}) into {folder}"
            )


@dataclass(frozen=True)
class LatencyEncoding:
    """uint8 image -> one spike per bright pixel at step `floor(tau * ln(x / (x - threshold)))`.

    Frames `(n_time_bins, 1, *image_shape)` float32; pixels with `x <= threshold` or a spike time at or
    after `n_time_bins` stay silent. `tau` is in time steps (the paper: tau_eff 20 with dt 1).
    """

    n_time_bins: int = 100
    tau: float = 20.0
    threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.n_time_bins <= 0 or self.tau <= 0 or not 0.0 <= self.threshold < 1.0:
            raise ConfigError(f"data.transform: need n_time_bins > 0, tau > 0 and 0 <= threshold < 1, got {self}")

    def spike_steps(self, image: np.ndarray) -> np.ndarray:
        """Per pixel the spike step, or -1 for no spike."""
        x = np.asarray(image, dtype=np.float64) / 255.0
        bright = x > self.threshold
        ratio = np.where(bright, x / np.where(bright, x - self.threshold, 1.0), 1.0)
        steps = np.floor(self.tau * np.log(ratio)).astype(np.int64)
        return np.where(bright & (steps < self.n_time_bins), steps, -1)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        steps = self.spike_steps(image)
        frames = np.zeros((self.n_time_bins, 1, *steps.shape), dtype=np.float32)
        idx = np.nonzero(steps >= 0)
        frames[(steps[idx], 0, *idx)] = 1.0
        return frames


class FashionMNIST(Dataset):
    """The images and labels of one split (`dataset[i] -> (transform(image), label)`)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None) -> None:
        if len(images) != len(labels):
            raise DataError(f"fmnist: {len(images)} images but {len(labels)} labels: the files do not match")
        if labels.size and int(labels.max()) > 9:
            raise DataError(f"fmnist: label {int(labels.max())} out of range 0..9: the labels file is corrupt")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform is not None else image), int(self.labels[index])


class FashionMNISTDataModule(EventDataModule):
    """Fashion-MNIST latency-coded through the shared event path; validation = seeded `data.val_fraction`."""

    dataset_name = "fmnist"

    def __init__(self, root: str, download: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.root = Path(root).expanduser()
        self.download = bool(download)
        self.sizes: dict[str, int] = {}

    def find(self, name: str) -> Path | None:
        """`<root>/<name>` or `<root>/<name>.gz`, whichever exists (plain first)."""
        for candidate in (self.root / name, self.root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def check_files(self, split: str) -> list[Path]:
        missing = [n for n in FILES[split] if self.find(n) is None]
        if missing and self.download:
            download(self.root, [f"{n}.gz" for n in missing])
            missing = [n for n in FILES[split] if self.find(n) is None]
        if missing:
            names = ", ".join(f"{n}[.gz]" for s in FILES for n in FILES[s])
            fix = f"put the Fashion-MNIST files there ({names}), or pass data.download=true to download them"
            raise missing_data("fmnist", self.root, missing, fix,
                               not_found=f"fmnist: {', '.join(missing)} not found in {self.root}. P{fix[1:]}")
        return [self.find(n) for n in FILES[split]]  # type: ignore[misc]

    def make_dataset(self, split: str, transform: Callable) -> FashionMNIST:
        images_path, labels_path = self.check_files(split)
        images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
        shape = tuple(self.input_shape[-2:])
        if images.shape[1:] != shape:
            raise DataError(f"{images_path}: images are {list(images.shape[1:])}, data.input_shape says {list(shape)}")
        self.sizes[split] = len(labels)
        if not len(labels):
            raise DataError(f"fmnist: {labels_path} holds no samples")
        return FashionMNIST(images, labels, transform)

    def dataset_id(self) -> str:
        files = [p for s in FILES for n in FILES[s] if (p := self.find(n)) is not None]
        stats = ",".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime:.0f}" for p in files)
        return f"fmnist:{self.root.resolve()}:{stats}"

    @property
    def is_full_dataset(self) -> bool:
        """True only with the complete 60,000 / 10,000 published files."""
        return bool(self.sizes) and all(self.sizes.get(k) == n for k, n in FULL_SIZES.items())
