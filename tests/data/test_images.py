"""Image DataModules on generated JPEG folders and Hugging Face datasets written to disk."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers.images import class_colour, class_names, draw_image, image_rows, write_image_folder
from PIL import Image

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.caching import DiskCache, GpuCache, MemoryCache
from brainlab.data.hf_images import HFImageDataModule
from brainlab.data.image_aug import ImageAugment
from brainlab.data.imagefolder import DecodeImage, ImageFolderDataModule
from brainlab.data.imagenet import ImageNetDataModule, is_imagenet_1k
from brainlab.data.splits import stratified_split

SIZE = 16


def folder_dm(root: Path, **kw) -> ImageFolderDataModule:
    args = dict(root=str(root), num_classes=3, image_size=SIZE, batch_size=8, val_fraction=0.25)
    return ImageFolderDataModule(**{**args, **kw})


def all_items(dataset) -> tuple[np.ndarray, np.ndarray]:
    items = [dataset[i] for i in range(len(dataset))]
    return np.stack([np.asarray(x, dtype=np.float32) for x, _ in items]), np.array([y for _, y in items])


def dominant_label(images: np.ndarray) -> np.ndarray:
    """The class whose colour is closest to each image's brightest pixels (the drawn shape)."""
    colours = np.array([class_colour(c, 3) for c in range(3)], dtype=np.float32)
    flat = images.reshape(len(images), 3, -1)
    top = np.take_along_axis(flat, np.argsort(flat.sum(1), axis=1)[:, None, -20:], axis=2).mean(2)
    return np.argmin(((top[:, None, :] - colours[None]) ** 2).sum(-1), axis=1)


def test_decode_resizes_crops_and_reports_a_bad_file(tmp_path: Path) -> None:
    wide = Image.new("RGB", (40, 20), (10, 200, 30))
    wide.save(tmp_path / "wide.jpg")
    out = DecodeImage(SIZE, 18)(tmp_path / "wide.jpg")
    assert out.shape == (3, SIZE, SIZE) and out.dtype == np.uint8
    assert abs(int(out[1].mean()) - 200) < 6 and out[0].mean() < 20
    grey = DecodeImage(SIZE, SIZE, channels=1)(wide)
    assert grey.shape == (1, SIZE, SIZE)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="broken.jpg"):
        DecodeImage(SIZE, SIZE)(tmp_path / "broken.jpg")


def test_folder_classes_splits_and_labels(tmp_path: Path) -> None:
    write_image_folder(tmp_path, {"train": 8, "val": 2})
    dm = folder_dm(tmp_path)
    dm.setup()
    assert dm.classes == class_names(3)
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes == {"train": 18, "val": 6, "test": 6}  # val/ is the test set, val = 25% of train per class
    for split in ("train", "val", "test"):
        images, labels = all_items(dm.datasets[split])
        assert images.shape[1:] == (3, SIZE, SIZE)
        assert np.bincount(labels, minlength=3).min() > 0  # stratified: every class in every split
        assert (dominant_label(images) == labels).mean() > 0.9  # labels follow the class folders
    assert dm.split_hash and not dm.is_full_dataset
    again = folder_dm(tmp_path)
    again.setup()
    assert again.split_hash == dm.split_hash
    other = folder_dm(tmp_path, split_seed=1)
    other.setup()
    assert other.split_hash != dm.split_hash


def test_folder_without_val_and_with_test(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "a", {"train": 10})
    dm = folder_dm(tmp_path / "a", val_fraction=0.2, test_fraction=0.2)
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 18, "val": 6, "test": 6}
    write_image_folder(tmp_path / "b", {"train": 4, "val": 2, "test": 3})
    dm = folder_dm(tmp_path / "b")
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 12, "val": 6, "test": 9}


def test_stratified_split_is_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 5, 1])
    rest, val, test = stratified_split(labels, [0.2, 0.2], seed=3)
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(labels.size))
    assert np.bincount(labels[val], minlength=4).tolist() == [2, 4, 1, 0]
    assert all((a == b).all() for a, b in zip(stratified_split(labels, [0.2, 0.2], 3), (rest, val, test), strict=True))
    small = np.repeat(np.arange(3), 4)
    assert [p.size for p in stratified_split(small, [0.1, 0.1], seed=0)] == [10, 1, 1]


def test_bad_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train/<class>/<image>"):
        folder_dm(tmp_path / "missing").setup()
    write_image_folder(tmp_path / "ok", {"train": 3})
    with pytest.raises(ConfigError, match="data.num_classes=3"):
        folder_dm(tmp_path / "ok", num_classes=5).setup()
    write_image_folder(tmp_path / "extra", {"train": 3, "val": 1})
    (tmp_path / "extra" / "val" / "zebra").mkdir()
    with pytest.raises(DataError, match="zebra.*not a training class"):
        folder_dm(tmp_path / "extra").setup()
    write_image_folder(tmp_path / "empty", {"train": 3})
    (tmp_path / "empty" / "train" / "n99999999").mkdir()
    with pytest.raises(DataError, match="n99999999 has no images"):
        folder_dm(tmp_path / "empty", num_classes=4).setup()
    with pytest.raises(ConfigError, match="resize_size"):
        folder_dm(tmp_path / "ok", resize_size=SIZE - 1)


def test_imagenet_layout_and_messages(tmp_path: Path) -> None:
    write_image_folder(tmp_path, {"train": 6, "val": 2}, n_classes=3)
    dm = ImageNetDataModule(root=str(tmp_path), num_classes=3, image_size=SIZE, val_fraction=0.2)
    dm.setup()
    assert len(dm.datasets["test"]) == 6 and len(dm.datasets["val"]) == 4  # round(18 * 0.2)
    assert not dm.is_full_dataset  # 3 classes of fixtures: never reported as ImageNet
    assert is_imagenet_1k(1000, 1_281_167, 50_000) and not is_imagenet_1k(1000, 1_281_167, 49_999)
    with pytest.raises(ConfigError, match="image-net.org"):
        ImageNetDataModule(root=str(tmp_path), num_classes=3, download=True)
    with pytest.raises(DataError, match="ILSVRC2012"):
        ImageNetDataModule(root=str(tmp_path / "none"), num_classes=1000).setup()
    flat = tmp_path / "flat"
    write_image_folder(flat, {"train": 2})
    (flat / "val").mkdir()
    draw_image(0, 3, SIZE, np.random.default_rng(0)).save(flat / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataError, match="valprep"):
        ImageNetDataModule(root=str(flat), num_classes=3).setup()


@pytest.mark.parametrize("cache", ["memory", "disk", "on_device"])
def test_caches_serve_the_decoded_images(tmp_path: Path, cache: str) -> None:
    write_image_folder(tmp_path / "data", {"train": 4, "val": 1})
    plain = folder_dm(tmp_path / "data")
    plain.setup()
    strategy = {"memory": MemoryCache, "disk": lambda: DiskCache(tmp_path / "cache"),
                "on_device": lambda: GpuCache(device="cpu")}[cache]()
    cached = folder_dm(tmp_path / "data", cache=strategy)
    cached.setup()
    for split in ("train", "val", "test"):
        want, want_y = all_items(plain.datasets[split])
        got, got_y = all_items(cached.datasets[split])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_y, want_y)
    images, _ = next(iter(cached.test_dataloader()))  # `want` holds the test split now
    batch, _ = cached.on_after_batch_transfer((images, None), 0)
    torch.testing.assert_close(batch, torch.from_numpy(want[: len(batch)]) / 255)
    if cache == "disk":
        entries = sorted(p.name for p in (tmp_path / "cache" / "imagefolder" / "train").iterdir())
        reused = folder_dm(tmp_path / "data", cache=DiskCache(tmp_path / "cache"))
        reused.setup()
        assert sorted(p.name for p in (tmp_path / "cache" / "imagefolder" / "train").iterdir()) == entries
        bigger = folder_dm(tmp_path / "data", cache=DiskCache(tmp_path / "cache"), image_size=SIZE - 4)
        bigger.setup()  # another decode size is another entry, never a stale one
        assert len(list((tmp_path / "cache" / "imagefolder" / "train").iterdir())) == len(entries) + 1


def test_batches_are_unit_floats_and_only_training_is_augmented(tmp_path: Path) -> None:
    import kornia.augmentation as K  # imported here: a heavy import the other tests do not need

    write_image_folder(tmp_path, {"train": 4, "val": 1})
    augment = [K.RandomHorizontalFlip(p=1.0), K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)]
    dm = folder_dm(tmp_path, augment=augment)
    dm.setup()
    images, targets = next(iter(dm.val_dataloader()))
    assert images.dtype == torch.uint8
    dm.trainer = SimpleNamespace(training=False)
    evaluated, _ = dm.on_after_batch_transfer((images, targets), 0)
    torch.testing.assert_close(evaluated, images.float() / 255)
    dm.trainer = SimpleNamespace(training=True)
    trained, same_targets = dm.on_after_batch_transfer((images, targets), 0)
    assert trained.shape == evaluated.shape and torch.equal(same_targets, targets)
    assert float(trained.min()) >= 0 and float(trained.max()) <= 1
    assert not torch.allclose(trained, evaluated)
    with pytest.raises(ConfigError, match="changed the image shape"):
        ImageAugment([K.RandomResizedCrop(size=(8, 8))])(evaluated)
    with pytest.raises(ConfigError, match="kornia"):
        ImageAugment(["flip"])


def hf_dm(path: str, **kw) -> HFImageDataModule:
    return HFImageDataModule(path=path, **{"num_classes": 3, "image_size": SIZE, "batch_size": 4, **kw})


def test_hf_saved_dataset_matches_the_images(tmp_path: Path) -> None:
    import datasets  # imported here: a heavy import the other tests do not need

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["r", "g", "b"])})
    train = datasets.Dataset.from_dict(image_rows(6, size=20), features=features)
    val = datasets.Dataset.from_dict(image_rows(2, size=20, seed=1), features=features)
    unlabelled = datasets.Dataset.from_dict({**image_rows(1, size=20, seed=2), "label": [-1, -1, -1]})
    datasets.DatasetDict({"train": train, "validation": val, "test": unlabelled}).save_to_disk(tmp_path / "hf")
    dm = hf_dm(str(tmp_path / "hf"), val_fraction=0.2)
    dm.setup()
    assert dm.classes == ["r", "g", "b"]
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 14, "val": 4, "test": 6}  # test = validation
    images, labels = all_items(dm.datasets["test"])
    expected = np.stack([DecodeImage(SIZE, SIZE)(row["image"]) for row in val]).astype(np.float32)
    assert np.abs(images - expected).mean() < 3  # the same pictures (through a PNG round trip)
    assert labels.tolist() == val["label"]
    assert not dm.is_full_dataset
    with pytest.raises(DataError, match="outside 0..2"):
        hf_dm(str(tmp_path / "hf"), test_split="test").setup()
    with pytest.raises(ConfigError, match="data.label_column='fine'"):
        hf_dm(str(tmp_path / "hf"), label_column="fine").setup()
    with pytest.raises(DataError, match="data.val_split='dev'"):
        hf_dm(str(tmp_path / "hf"), val_split="dev").setup()


def test_hf_imagefolder_builder_and_missing_data(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "folder", {"train": 4, "test": 2}, ext=".jpg")
    dm = hf_dm("imagefolder", data_dir=str(tmp_path / "folder"), cache_dir=str(tmp_path / "hf_cache"))
    dm.setup()
    assert dm.classes == class_names(3)
    images, labels = all_items(dm.datasets["test"])
    assert len(labels) == 6 and (dominant_label(images) == labels).mean() > 0.9
    with pytest.raises(DataError, match="data.download=true"):
        hf_dm(str(tmp_path / "nothing_here"), cache_dir=str(tmp_path / "hf_cache")).setup()
    with pytest.raises(DataError, match="data.download=true"):
        hf_dm("someone/not-on-this-disk", cache_dir=str(tmp_path / "hf_cache")).setup()
