"""mini-ImageNet episodes from generated JPEG folders + split CSVs in the Ravi & Larochelle layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.miniimagenet import SPLITS, write_miniimagenet
from PIL import Image

from brainlab.core.errors import ConfigError, DataError
from brainlab.data import miniimagenet
from brainlab.data.miniimagenet import MiniImageNetDataModule


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_miniimagenet(tmp_path_factory.mktemp("miniimagenet"))


def make_dm(root: Path, **kw) -> MiniImageNetDataModule:
    args = dict(root=root, ways=3, shots=1, queries=2, image_size=84, train_episodes=6, val_episodes=4,
                test_episodes=4, batch_size=2)
    dm = MiniImageNetDataModule(**{**args, **kw})
    dm.setup()
    return dm


def test_classes_come_from_the_split_csvs(mini_root: Path) -> None:
    dm = make_dm(mini_root)
    names = {s: dm.class_names[s] for s in ("train", "val", "test")}
    assert [len(names[s]) for s in ("train", "val", "test")] == [6, 3, 4]
    assert names["train"][0] == "n01000001" and names["test"][-1] == "n01000013"
    assert not set(names["train"]) & set(names["val"]) and not set(names["val"]) & set(names["test"])
    images = dm.classes["train"][0]
    assert images.shape == (5, 3, 84, 84) and images.dtype == torch.uint8
    with Image.open(mini_root / "images" / "n0100000100000001.jpg") as img:
        assert torch.equal(images[0], torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1))
    assert dm.is_full_dataset is False


def test_episodes_are_floats_of_the_labelled_classes(mini_root: Path) -> None:
    dm = make_dm(mini_root, ways=3, shots=2, queries=3)
    batch = next(iter(dm.train_dataloader()))
    assert batch["support_x"].shape == (2, 6, 3, 84, 84) and batch["query_x"].shape == (2, 9, 3, 84, 84)
    assert batch["support_x"].dtype == torch.float32 and 0.0 <= float(batch["query_x"].min())
    assert float(batch["query_x"].max()) <= 1.0
    for task in range(2):
        for label, c in enumerate(batch["classes"][task].tolist()):
            stored = dm.classes["train"][c].float() / 255.0
            drawn = torch.cat([batch["support_x"][task][batch["support_y"][task] == label],
                               batch["query_x"][task][batch["query_y"][task] == label]])
            hits = [int(torch.nonzero((stored == img).flatten(1).all(1))[0]) for img in drawn]
            assert len(set(hits)) == 5, "distinct images of the labelled class"


def test_lazy_decoding_gives_the_same_seeded_episodes(mini_root: Path) -> None:
    eager, lazy = make_dm(mini_root), make_dm(mini_root, preload=False)
    other = make_dm(mini_root, seed=1)
    for split in ("train", "test"):
        a, b, c = (list(getattr(dm, f"{split}_dataloader")()) for dm in (eager, lazy, other))
        assert all(torch.equal(x["query_x"], y["query_x"]) for x, y in zip(a, b, strict=True))
        assert not all(torch.equal(x["query_x"], y["query_x"]) for x, y in zip(a, c, strict=True))


def test_resize_and_gray(mini_root: Path) -> None:
    dm = make_dm(mini_root, image_size=32, channels=1)
    assert dm.classes["val"][0].shape == (5, 1, 32, 32)
    assert next(iter(dm.val_dataloader()))["support_x"].shape == (2, 3, 1, 32, 32)


def test_missing_dataset_is_one_line_naming_the_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        MiniImageNetDataModule(root=tmp_path / "nowhere").setup()
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "nowhere") in message
    assert all(name in message for name in ("train.csv", "val.csv", "test.csv", "images/"))


def test_broken_files_are_refused(tmp_path: Path) -> None:
    root = write_miniimagenet(tmp_path / "a", classes={"train": 3, "val": 3, "test": 3}, images=3, size=16)
    (root / "images" / "n0100000200000002.jpg").unlink()
    with pytest.raises(DataError, match="1 images named in the split CSVs are missing.*n0100000200000002.jpg"):
        make_dm(root)
    root = write_miniimagenet(tmp_path / "b", classes={"train": 3, "val": 3, "test": 3}, images=3, size=16)
    (root / "images" / "n0100000100000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot decode.*n0100000100000001.jpg"):
        make_dm(root)
    (root / "val.csv").write_text("image,class\nx.jpg,n1\n")
    with pytest.raises(DataError, match="val.csv must start with the header 'filename,label'"):
        make_dm(root)
    (root / "val.csv").write_text((root / "train.csv").read_text())
    with pytest.raises(DataError, match="in both train.csv and val.csv"):
        make_dm(root)


def test_bad_config_is_refused(mini_root: Path) -> None:
    with pytest.raises(ConfigError, match="data.channels"):
        MiniImageNetDataModule(root=mini_root, channels=2)
    with pytest.raises(ConfigError, match="data.ways"):
        make_dm(mini_root, ways=4)  # only 3 validation classes
    with pytest.raises(ConfigError, match="data.shots"):
        make_dm(mini_root, shots=3, queries=3)  # 5 images per class


def test_full_dataset_only_with_the_complete_split(mini_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(miniimagenet, "FULL_CLASSES", dict(SPLITS))
    monkeypatch.setattr(miniimagenet, "IMAGES_PER_CLASS", 5)
    assert make_dm(mini_root).is_full_dataset is True
    monkeypatch.setattr(miniimagenet, "IMAGES_PER_CLASS", 600)
    assert make_dm(mini_root).is_full_dataset is False
