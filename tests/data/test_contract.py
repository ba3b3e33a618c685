"""The DataModule contract, checked for every `conf/data/*.yaml` on its format-true generated fixture.

Each dataset config is composed as a user would (`data=<name> data.root=<folder>` plus tiny sizes),
instantiated with Hydra, run through `prepare_data()` and `setup("fit")`, and ONE training batch - as the
model receives it, i.e. after `on_after_batch_transfer` during training - must have the documented structure
and the shapes the config implies. On an empty folder the datamodule must raise a `DataError` whose single
line names the folder and says where the files go (or `data.download=true`).

A new `conf/data/<name>.yaml` without a case in `CASES` fails here: add its case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from helpers.babi import write_release
from helpers.config import CONF, compose_cfg
from helpers.events import make_dvs_gesture, make_nmnist, make_shd, make_ssc
from helpers.fmnist import make_fmnist
from helpers.images import image_rows, write_image_folder
from helpers.minari import write_cartpole
from helpers.miniimagenet import write_miniimagenet
from helpers.mosei import write_mult_pickle
from helpers.nab_corpus import write_corpus
from helpers.omniglot import write_omniglot
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from brainlab.core.errors import BrainlabError, DataError

NAMES = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
CARTPOLE = "test/cartpole/scripted-v0"


# ---- fixture writers: each writes its dataset into `root`, used as data.root (hf_images: data.path) ----

def write_hf_images(root: Path) -> None:
    """A `datasets` DatasetDict saved with save_to_disk (train + labelled test), read offline."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["r", "g", "b"])})
    splits = {"train": image_rows(4, size=20), "test": image_rows(1, size=20, seed=1)}
    datasets.DatasetDict({k: datasets.Dataset.from_dict(v, features=features) for k, v in splits.items()}
                         ).save_to_disk(root)


def write_nab(root: Path) -> None:
    stamps = np.datetime64("2015-03-01T00:00:00") + np.arange(40) * np.timedelta64(300, "s")
    write_corpus(root, {"realA/one.csv": (stamps, np.arange(40.0)), "artB/two.csv": (stamps[:25], np.ones(25))},
                 windows={"realA/one.csv": [(20, 25)], "artB/two.csv": []})


def write_mosei(root: Path) -> None:
    write_mult_pickle(root / "mosei_senti_data.pkl", sizes={"train": 8, "valid": 4, "test": 4})


# ---- structure checks: `batch` is the training batch as the model receives it ----

def check_events(batch: Any, cfg: DictConfig) -> None:
    """(frames float32 (B, T, *input_shape), targets int64 (B,)) with T = data.n_time_bins."""
    frames, targets = batch
    b = cfg.data.batch_size
    assert frames.dtype == torch.float32
    assert tuple(frames.shape) == (b, cfg.data.n_time_bins, *cfg.data.input_shape)
    assert list(frames.shape[2:]) == list(cfg.model.net.input_shape), "the model's input_shape is the data's"
    assert frames.sum() > 0, "the fixture's events land in the frames"
    check_targets(targets, b, cfg.data.num_classes)


def check_images(batch: Any, cfg: DictConfig) -> None:
    """(images float32 (B, C, S, S) in [0, 1], targets int64 (B,)); the loader itself yields uint8."""
    images, targets = batch
    b = cfg.data.batch_size
    assert images.dtype == torch.float32
    assert tuple(images.shape) == (b, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert list(images.shape[1:]) == list(cfg.model.net.input_shape), "the model's input_shape is the data's"
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    check_targets(targets, b, cfg.data.num_classes)


def check_targets(targets: torch.Tensor, batch_size: int, num_classes: int) -> None:
    assert targets.dtype == torch.int64 and tuple(targets.shape) == (batch_size,)
    assert set(targets.tolist()) <= set(range(num_classes))


def check_episodes(batch: Any, cfg: DictConfig) -> None:
    """Dict of `data.batch_size` stacked N-way K-shot episodes (brainlab.data.episodes)."""
    d, net = cfg.data, cfg.model.net
    image = (net.in_channels, net.image_size, net.image_size)  # what model=meta builds its Conv4 for
    assert net.num_classes == d.ways
    for part, per_class in (("support", d.shots), ("query", d.queries)):
        x, y = batch[f"{part}_x"], batch[f"{part}_y"]
        assert x.dtype == torch.float32 and tuple(x.shape) == (d.batch_size, d.ways * per_class, *image)
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert y.dtype == torch.int64 and tuple(y.shape) == (d.batch_size, d.ways * per_class)
        assert set(y.unique().tolist()) == set(range(d.ways))
    assert tuple(batch["classes"].shape) == (d.batch_size, d.ways)


def check_babi(batch: Any, cfg: DictConfig) -> None:
    """Dict of int64 token ids: story (B, M, L), query (B, Lq), answer (B,), task (B,), support (B, S)."""
    b = cfg.data.batch_size
    assert set(batch) == {"story", "query", "answer", "task", "support"}
    assert all(v.dtype == torch.int64 for v in batch.values()), "bAbI batches are token / class ids"
    story = batch["story"]
    assert story.dim() == 3 and story.shape[0] == b and story.shape[1] <= cfg.model.net.max_memory
    assert batch["query"].dim() == 2 and batch["query"].shape[0] == b
    assert tuple(batch["answer"].shape) == tuple(batch["task"].shape) == (b,)
    assert set(batch["task"].tolist()) <= set(cfg.data.tasks)
    assert batch["support"].dim() == 2 and batch["support"].shape[0] == b and int(batch["support"].min()) >= -1


def check_minari(batch: Any, cfg: DictConfig) -> None:
    """Dict of windows of L = horizon + 1 steps: obs (B, L+1, obs_dim) float32, action/reward/terminated/mask (B, L)."""
    b, steps = cfg.data.batch_size, cfg.data.horizon + 1
    obs = batch["obs"]
    assert obs.dtype == torch.float32 and tuple(obs.shape) == (b, steps + 1, 4)  # CartPole: 4 observations
    assert batch["action"].dtype == torch.int64 and tuple(batch["action"].shape) == (b, steps)  # Discrete(2)
    assert batch["reward"].is_floating_point() and tuple(batch["reward"].shape) == (b, steps)
    for key in ("terminated", "mask"):  # float32 0/1 (mask weights the per-step losses; MOSEI's masks are bool)
        assert batch[key].dtype == torch.float32 and tuple(batch[key].shape) == (b, steps)
        assert set(batch[key].unique().tolist()) <= {0.0, 1.0}
    assert batch["mask"].any() and tuple(batch["episode"].shape) == (b,)


def check_mosei(batch: Any, cfg: DictConfig) -> None:
    """Dict: <modality> (B, L, D) float32, <modality>_mask (B, L) bool, label (B,) float (sentiment regression)."""
    b = cfg.data.batch_size
    for modality, dim in {"text": 12, "audio": 6, "vision": 5}.items():  # helpers.mosei.DIMS
        x, mask = batch[modality], batch[f"{modality}_mask"]
        assert x.dtype == torch.float32 and x.shape[0] == b and x.shape[2] == dim
        assert mask.dtype == torch.bool and tuple(mask.shape) == tuple(x.shape[:2])
        assert torch.isfinite(x).all()
    assert batch["label"].is_floating_point() and tuple(batch["label"].shape) == (b,)
    assert len(batch["id"]) == b


def check_nab(batch: Any, cfg: DictConfig) -> None:
    """One lockstep chunk of every file: value float64 (files, rows_per_step), timestamp int64, length int64."""
    files, rows = len(batch["files"]), cfg.data.rows_per_step
    assert files == 2 and batch["start"] == 0
    assert batch["value"].dtype == torch.float64 and tuple(batch["value"].shape) == (files, rows)
    assert batch["timestamp"].dtype == torch.int64 and tuple(batch["timestamp"].shape) == (files, rows)
    assert batch["length"].dtype == torch.int64 and batch["length"].tolist() == [rows, rows]


@dataclass(frozen=True)
class Case:
    write: Callable[[Path], object] | None  # writes the fixture into data.root (data.path); None: embedded set
    overrides: tuple[str, ...]  # `{tmp}` stands for the test's tmp_path
    check: Callable[[Any, DictConfig], None]
    hint: str  # besides the folder, what the missing-data message must say (where the files go / how to get them)
    root_key: str = "root"


EVENTS = ("data.num_classes=4", "data.batch_size=4")
IMAGES = ("model=vision_snn", "data.num_classes=3", "data.image_size=16", "data.batch_size=4")
EPISODES = ("model=meta", "data.ways=3", "data.shots=1", "data.queries=2", "data.train_episodes=4",
            "data.val_episodes=2", "data.test_episodes=2", "data.batch_size=2")
DOWNLOAD = "data.download=true"

CASES: dict[str, Case] = {
    "babi": Case(lambda r: write_release(r, "en-10k", tasks=[1, 2], n_stories=6, n_test_stories=2),
                 ("model=reasoning", "data.tasks=[1,2]", "data.batch_size=4"), check_babi, DOWNLOAD),
    "dvs_gesture": Case(lambda r: make_dvs_gesture(r, users=2, events=200),
                        (*EVENTS, "data.spatial_factor=0.25", "data.frame_size=32"), check_events, DOWNLOAD),
    "fmnist": Case(lambda r: make_fmnist(r, train=24, test=8, gz=False), (*EVENTS, "data.n_time_bins=30"),
                   check_events, DOWNLOAD),
    "hf_images": Case(write_hf_images, (*IMAGES, "data.cache_dir={tmp}/hf_cache"), check_images, DOWNLOAD,
                      root_key="path"),
    # imagefolder, imagenet, miniimagenet, mosei, nab have no data.download: the message says what to put there
    "imagefolder": Case(lambda r: write_image_folder(r, {"train": 4, "val": 1}), IMAGES, check_images,
                        "train/<class>/<image>"),
    # no data.download for ImageNet (its licence): the message points to image-net.org instead
    "imagenet": Case(lambda r: write_image_folder(r, {"train": 4, "val": 1}),
                     (*IMAGES, "data.resize_size=16", "data.val_fraction=0.25", "data.num_workers=0",
                      "data.pin_memory=false"), check_images, "image-net.org"),
    "minari": Case(lambda r: write_cartpole(r, CARTPOLE, episodes=4, max_steps=24, seed=1),
                   (f"data.dataset_id={CARTPOLE}", "data.horizon=3", "data.batch_size=4", "data.val_fraction=0.25"),
                   check_minari, DOWNLOAD),
    "miniimagenet": Case(lambda r: write_miniimagenet(r, classes={"train": 3, "val": 3, "test": 3}, images=3, size=16),
                         (*EPISODES, "data.image_size=16"), check_episodes, "train.csv"),
    "mosei": Case(write_mosei, ("data.batch_size=4",), check_mosei, "mosei_senti_data.pkl"),
    "nab": Case(write_nab, ("data.rows_per_step=16",), check_nab, "git clone https://github.com/numenta/NAB"),
    "nmnist": Case(lambda r: make_nmnist(r, train=3, test=1, events=150), EVENTS, check_events, DOWNLOAD),
    "omniglot": Case(lambda r: write_omniglot(r, background=8, evaluation=3, drawings=3),
                     (*EPISODES, "data.val_fraction=0.4"), check_episodes, "images_background.zip"),
    "shd": Case(lambda r: make_shd(r, train=3, test=1), EVENTS, check_events, DOWNLOAD),
    "ssc": Case(lambda r: make_ssc(r, train=3, valid=1, test=1), EVENTS, check_events, DOWNLOAD),
    # the embedded synthetic set is generated in memory: no files, no root, nothing to be missing
    "synthetic": Case(None, ("data.num_classes=4", "data.n_channels=16", "data.duration_us=200000",
                             "data.n_time_bins=20", "data.transform.transforms.0.time_window=10000",
                             "data.samples_per_class=3", "data.test_samples_per_class=1", "data.batch_size=4"),
                      check_events, ""),
}


def case_of(name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"conf/data/{name}.yaml has no DataModule contract case: add one to CASES in "
                    f"tests/data/test_contract.py (fixture writer, tiny overrides, batch check)")
    return CASES[name]


def datamodule(name: str, root: Path | None, run_dir: Path) -> tuple[Any, DictConfig]:
    case = case_of(name)
    where = [] if root is None else [f"data.{case.root_key}={root}"]
    overrides = [o.replace("{tmp}", str(run_dir.parent)) for o in case.overrides]
    cfg = compose_cfg(run_dir, [f"data={name}", *where, *overrides])
    return instantiate(cfg.data, _convert_="all"), cfg


def test_every_case_is_a_dataset_config_and_a_new_config_needs_one() -> None:
    assert set(CASES) <= set(NAMES), f"cases without a conf/data yaml: {sorted(set(CASES) - set(NAMES))}"
    with pytest.raises(pytest.fail.Exception, match=r"conf/data/new_set.yaml has no .* add one to CASES"):
        case_of("new_set")


@pytest.mark.parametrize("name", NAMES)
def test_fixture_gives_a_training_batch_of_the_documented_structure(name: str, tmp_path: Path) -> None:
    case = case_of(name)
    root = None if case.write is None else tmp_path / name
    if case.write is not None:
        case.write(root)
    dm, cfg = datamodule(name, root, tmp_path / "run")
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True)  # as Lightning hands a training batch to the model
    case.check(dm.on_after_batch_transfer(batch, 0), cfg)
    if case.write is not None:  # the embedded synthetic set is the whole dataset; a fixture never is
        assert dm.is_full_dataset is False, "a fixture is never the published dataset"


@pytest.mark.parametrize("name", NAMES)
def test_empty_root_is_one_data_error_naming_the_folder(name: str, tmp_path: Path) -> None:
    case = case_of(name)
    if case.write is None:  # generated in memory: there is no folder that could be empty
        assert "root" not in OmegaConf.load(CONF / "data" / f"{name}.yaml")
        return
    empty = tmp_path / "empty"
    empty.mkdir()
    dm, _ = datamodule(name, empty, tmp_path / "run")

    def check(err: BrainlabError) -> None:
        message = str(err)
        assert isinstance(err, DataError), f"{type(err).__name__}: {message}"
        assert "\n" not in message and str(empty) in message and case.hint in message, message

    try:  # Lightning runs prepare_data first: where it already refuses, that is the message the user sees
        dm.prepare_data()
    except BrainlabError as err:
        check(err)
    with pytest.raises(BrainlabError) as err:
        dm.setup("fit")
    check(err.value)
    assert not any(empty.iterdir()), "a missing dataset is never downloaded or half-created"

