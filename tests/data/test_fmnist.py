"""data=fmnist: the idx-ubyte reader, latency encoding, splits, download checks, on generated idx files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.fmnist import make_fmnist, write_idx
from hydra.utils import instantiate

from brainlab.core.errors import DataError
from brainlab.data import fmnist


def datamodule(compose_cfg, tmp_path: Path, root: Path, *extra: str):
    cfg = compose_cfg(tmp_path / "run", ["data=fmnist", f"data.root={root}", "data.batch_size=8",
                                        "data.n_time_bins=30", *extra])
    return instantiate(cfg.data)


@pytest.fixture
def compose():
    from helpers.config import compose_cfg

    return compose_cfg


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", images, gz=gz)
    assert np.array_equal(fmnist.read_idx(path, 3), images)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]), gz=gz)
    assert fmnist.read_idx(labels, 1).tolist() == [3, 1, 4, 1, 5]


def test_malformed_files_are_refused(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "labels", np.arange(10))
    with pytest.raises(DataError, match=r"not an idx-ubyte file with 3 dimension\(s\) \(magic number 0x00000801"):
        fmnist.read_idx(labels, 3)
    images = write_idx(tmp_path / "images", np.zeros((4, 28, 28)))
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"has 3052 bytes, its header \[4, 28, 28\] says 3152: the file is truncated"):
        fmnist.read_idx(images, 3)
    html = tmp_path / "page.gz"
    html.write_bytes(b"<html>bot check</html>")
    with pytest.raises(DataError, match="cannot be read"):
        fmnist.read_idx(html, 1)


def test_latency_encoding_by_hand() -> None:
    enc = fmnist.LatencyEncoding(n_time_bins=12, tau=20.0, threshold=0.2)
    image = np.array([[255, 128, 51, 0, 60]], dtype=np.uint8)
    # 255: 20 ln(1/0.8) = 4.46 -> step 4; 128: 20 ln(0.502/0.302) = 10.16 -> 10; 51 = 0.2 and 0: silent;
    # 60: 20 ln(0.235/0.035) = 38 >= 12 bins: silent
    assert enc.spike_steps(image).tolist() == [[4, 10, -1, -1, -1]]
    frames = enc(image)
    assert frames.shape == (12, 1, 1, 5) and frames.dtype == np.float32
    assert frames.sum() == 2 and frames[4, 0, 0, 0] == 1 and frames[10, 0, 0, 1] == 1
    assert math.isclose(20 * math.log(1 / 0.8), 4.46, abs_tol=0.01)


def test_missing_files_name_folder_and_files(compose, tmp_path: Path) -> None:
    dm = datamodule(compose, tmp_path, tmp_path / "empty")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte, train-labels-idx1-ubyte not found in .*empty.*"
                                        r"data.download=true"):
        dm.setup("fit")


def test_datamodule_batches_split_and_not_full(compose, tmp_path: Path) -> None:
    root = make_fmnist(tmp_path / "fm", gz=False)
    dm = datamodule(compose, tmp_path, root, "data.val_fraction=0.25", "data.split_seed=3")
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [30, 10, 12]
    frames, targets = next(iter(dm.train_dataloader()))
    assert frames.shape == (8, 30, 1, 28, 28) and targets.dtype == torch.int64
    assert frames.sum(dim=1).max() <= 1, "one spike per pixel at most"
    again = datamodule(compose, tmp_path, root, "data.val_fraction=0.25", "data.split_seed=3")
    again.setup("fit")
    assert again.split_hash == dm.split_hash and dm.datasets["val"].indices == again.datasets["val"].indices
    assert dm.is_full_dataset is False, "40 + 12 images are not the 60k/10k dataset"


def test_download_checks_md5_and_names_the_host(tmp_path: Path, monkeypatch) -> None:
    mirror = make_fmnist(tmp_path / "mirror", gz=True)
    url = mirror.as_uri() + "/"
    with pytest.raises(DataError, match=r"download of t10k-labels-idx1-ubyte.gz failed .*md5 .* != bb300cfd"):
        fmnist.download(tmp_path / "dest", ["t10k-labels-idx1-ubyte.gz"], mirrors=(url,))
    assert not list((tmp_path / "dest").iterdir()), "a failed download leaves nothing behind"
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.setitem(fmnist.MD5, name, fmnist.md5sum(mirror / name))
    fmnist.download(tmp_path / "dest", [name], mirrors=("file:///nonexistent/", url))
    assert (tmp_path / "dest" / name).read_bytes() == (mirror / name).read_bytes()
