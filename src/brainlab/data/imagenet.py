"""ImageNet-1k (ILSVRC-2012) in the ImageNet layout: the guide's phase-1 data (`data=imagenet`).

    <root>/train/n01440764/*.JPEG   1,281,167 images in 1000 class folders (WordNet ids)
    <root>/val/n01440764/*.JPEG     50,000 images, sorted into the same class folders

The official validation set is the test set (its labels are public, the test set's are not); model
selection uses a seeded stratified `data.val_fraction` of train. ImageNet cannot be downloaded automatically
(its licence needs an image-net.org account).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.imagefolder import ImageFolderDataModule

#: ILSVRC-2012 sizes (Russakovsky et al. 2015): classes, training images, validation images
IMAGENET_CLASSES, IMAGENET_TRAIN, IMAGENET_VAL = 1000, 1_281_167, 50_000


def is_imagenet_1k(n_classes: int, n_train: int, n_test: int) -> bool:
    """True when the counts are those of the complete ILSVRC-2012 train and validation sets."""
    return n_classes == IMAGENET_CLASSES and n_train >= IMAGENET_TRAIN and n_test >= IMAGENET_VAL


class ImageNetDataModule(ImageFolderDataModule):
    """ImageNet-1k from `<root>/{train,val}/<wnid>/*.JPEG`; `is_full_dataset` only for the complete set."""

    dataset_name = "imagenet"

    def __init__(self, root: str, download: bool = False, **base: Any) -> None:
        if download:
            raise ConfigError("data.download=true is not possible for ImageNet (its licence needs an "
                              "image-net.org account): download ILSVRC2012 yourself and set data.root")
        super().__init__(root=root, test_dir=None, **base)  # ILSVRC's test/ has no public labels
        self.counts: dict[str, int] = {}

    def layout(self) -> str:
        return (f"ILSVRC2012 as {self.root}/train/<wnid>/*.JPEG (1000 class folders, e.g. n01440764) and "
                f"{self.root}/val/<wnid>/*.JPEG (sort the flat val images into class folders with the official "
                "labels first); get the files from image-net.org")

    def check_split_folder(self, folder: Path) -> None:
        try:
            super().check_split_folder(folder)
        except DataError:
            raise DataError(f"imagenet: {folder} holds the flat validation images: sort them into "
                            f"{folder}/<wnid>/ with the official labels (e.g. the valprep.sh script)") from None

    def sources(self) -> dict[str, Dataset]:
        found = super().sources()
        self.counts = {split: len(ds) for split, ds in found.items()}
        return found

    @property
    def is_full_dataset(self) -> bool:
        return is_imagenet_1k(len(self.classes), self.counts.get("train", 0), self.counts.get("test", 0))
