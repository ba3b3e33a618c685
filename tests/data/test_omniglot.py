"""Omniglot episodes from generated PNG folders in the official layout (images_background / images_evaluation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.omniglot import write_omniglot

from brainlab.core.errors import ConfigError, DataError
from brainlab.data import omniglot
from brainlab.data.omniglot import OmniglotDataModule


@pytest.fixture(scope="module")
def omniglot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_omniglot(tmp_path_factory.mktemp("omniglot"))


def make_dm(root: Path, **kw) -> OmniglotDataModule:
    args = dict(root=root, ways=3, shots=1, queries=2, image_size=28, train_episodes=6, val_episodes=4,
                test_episodes=4, val_fraction=0.25, batch_size=2)
    dm = OmniglotDataModule(**{**args, **kw})
    dm.setup()
    return dm


def test_official_layout_splits_classes_without_overlap(omniglot_root: Path) -> None:
    dm = make_dm(omniglot_root)
    names = {s: set(dm.class_names[s]) for s in ("train", "val", "test")}
    assert (len(names["train"]), len(names["val"]), len(names["test"])) == (9, 3, 8)
    assert not names["train"] & names["val"] and not (names["train"] | names["val"]) & names["test"]
    assert all(n.startswith("evaluation_") for n in names["test"])
    x = dm.classes["train"][0]
    assert x.shape == (4, 1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert 0.02 < float(x.mean()) < 0.6, "strokes are 1 on a 0 background"
    assert dm.is_full_dataset is False
    # the same split seed gives the same split; another seed another one
    assert make_dm(omniglot_root).class_names == dm.class_names
    assert make_dm(omniglot_root, split_seed=3).class_names["val"] != dm.class_names["val"]


def test_episodes_have_n_distinct_classes_k_support_q_query(omniglot_root: Path) -> None:
    dm = make_dm(omniglot_root, ways=4, shots=2, queries=2, val_fraction=0.34)
    batch = next(iter(dm.train_dataloader()))
    assert batch["support_x"].shape == (2, 8, 1, 28, 28) and batch["query_x"].shape == (2, 8, 1, 28, 28)
    assert batch["support_y"][0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3] == batch["query_y"][0].tolist()
    for task in range(2):
        classes = batch["classes"][task]
        assert len(set(classes.tolist())) == 4
        for label, c in enumerate(classes.tolist()):
            drawings = dm.classes["train"][c]
            seen = batch["support_x"][task][batch["support_y"][task] == label]
            seen = torch.cat([seen, batch["query_x"][task][batch["query_y"][task] == label]])
            idx = [int(torch.nonzero((drawings == img).flatten(1).all(1))[0]) for img in seen]
            assert len(set(idx)) == 4, "support and query drawings are distinct drawings of the labelled class"


def test_episodes_are_deterministic_per_seed_and_fresh_per_epoch(omniglot_root: Path) -> None:
    def episodes(dm: OmniglotDataModule, split: str, epoch: int = 0) -> list[torch.Tensor]:
        loader = getattr(dm, f"{split}_dataloader")()
        loader.sampler.set_epoch(epoch)
        return [b["query_x"] for b in loader]

    a, b, other = make_dm(omniglot_root), make_dm(omniglot_root), make_dm(omniglot_root, seed=1)
    for split in ("train", "val", "test"):
        assert all(torch.equal(x, y) for x, y in zip(episodes(a, split), episodes(b, split), strict=True))
        assert not all(torch.equal(x, y) for x, y in zip(episodes(a, split), episodes(other, split), strict=True))
    assert not torch.equal(episodes(a, "train", 0)[0], episodes(a, "train", 1)[0]), "training episodes are fresh"
    assert torch.equal(episodes(a, "val", 0)[0], episodes(a, "val", 1)[0]), "evaluation episodes are fixed"
    assert len(a.test_dataloader()) == 2, "test_episodes counts tasks: 4 tasks in batches of 2"


def test_missing_dataset_is_one_line_naming_the_zips_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        OmniglotDataModule(root=tmp_path / "nowhere").setup()
    message = str(err.value)
    assert "\n" not in message and "images_background.zip" in message and "images_evaluation.zip" in message
    assert str(tmp_path / "nowhere") in message


def test_bad_config_is_refused(omniglot_root: Path) -> None:
    with pytest.raises(ConfigError, match="data.ways"):
        make_dm(omniglot_root, ways=5)  # only 3 validation classes
    with pytest.raises(ConfigError, match="data.shots"):
        make_dm(omniglot_root, shots=2, queries=3)  # 4 drawings per class
    with pytest.raises(ConfigError, match="data.val_fraction"):
        OmniglotDataModule(root=omniglot_root, val_fraction=1.0)


def test_full_dataset_only_with_the_official_counts(omniglot_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omniglot, "FULL_CHARACTERS", {"background": 12, "evaluation": 8})
    monkeypatch.setattr(omniglot, "DRAWINGS_PER_CHARACTER", 4)
    assert make_dm(omniglot_root).is_full_dataset is True
    monkeypatch.setattr(omniglot, "DRAWINGS_PER_CHARACTER", 20)
    assert make_dm(omniglot_root).is_full_dataset is False
