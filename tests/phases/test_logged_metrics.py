"""Each phase's `logged_metrics` is what a short fit and test of it log (issue 22): brainlab.validate checks
`monitor`, `optimized_metric` and the callbacks' `monitor` against these names at setup, so a name logged but not
declared would be refused, and one declared but never logged would let a misspelling through.

One short run per phase on its tiny fixture (a couple of batches, one epoch); every name it logs is declared by the
phase or by a configured callback, and every name the phase declares is logged (`sometimes`: the names only some
settings log, e.g. top-5 accuracy with more than 5 classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from helpers.config import FAST, QUIET, compose_cfg
from omegaconf import OmegaConf

from brainlab.train import run
from brainlab.validate import declared_metrics, is_logged

pytestmark = pytest.mark.usefixtures("one_thread")

SHORT = [*QUIET, "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.num_sanity_val_steps=0", "callbacks.snn_media=null", "callbacks.neuromorphic=null"]
CARTPOLE = "test/cartpole/balance-v0"


def images(root: Path) -> list[str]:
    from helpers.images import write_image_folder

    write_image_folder(root, {"train": 2, "val": 1}, n_classes=6, size=16)
    return ["experiment=imagefolder_snn", f"data.root={root}", "data.num_classes=6", "data.image_size=16",
            "data.batch_size=6", "model.net.layers=[1,1]", "model.net.channels=[4,8]", "model.net.time_steps=2",
            "trainer.limit_test_batches=1", *SHORT]


def brain_ai(root: Path) -> list[str]:
    return ["experiment=brain_ai", "preset=tiny", "data.samples_per_class=4", "data.test_samples_per_class=2",
            "data.batch_size=4", "trainer.limit_test_batches=1", *SHORT]


def nab(root: Path) -> list[str]:
    from helpers.htm import SMALL_OVERRIDES
    from helpers.nab_corpus import write_corpus

    stamps = np.datetime64("2015-01-01T00:00:00") + np.arange(60) * np.timedelta64(300, "s")
    write_corpus(root, {"realA/a.csv": (stamps, np.tile([0.0, 4, 8, 2, 6], 12))}, windows={"realA/a.csv": [(40, 50)]})
    return ["experiment=nab_htm", "model=htm", f"data.root={root}", "data.rows_per_step=30", *SMALL_OVERRIDES,
            *QUIET]


def omniglot(root: Path) -> list[str]:
    from helpers.omniglot import write_omniglot

    write_omniglot(root, background=8, evaluation=3, drawings=3)
    return ["experiment=omniglot_maml", f"data.root={root}", "data.image_size=14", "data.queries=1",
            "data.train_episodes=2", "data.val_episodes=1", "data.val_fraction=0.4", "data.test_episodes=2",
            "data.batch_size=1", "data.ways=3", "model.ways=3", "model.net.hidden_dim=4", "model.net.blocks=1",
            "model.inner_steps=1", "model.neuromodulation=true", *SHORT]


def babi(root: Path) -> list[str]:
    from helpers.babi import write_release

    write_release(root, "en", tasks=[1, 2], n_stories=4, n_test_stories=2)
    return ["experiment=babi_reasoning", f"data.root={root}", "data.variant=en", "data.tasks=[1,2]",
            "data.batch_size=8", "model.net.embed_dim=8", "model.net.hops=1", "trainer.limit_test_batches=2",
            *SHORT]


def mosei(root: Path) -> list[str]:
    from helpers.mosei import write_csd_release

    write_csd_release(root, {"train": ["t0", "t1", "t2", "t3"], "valid": ["v0"], "test": ["s0"]})
    return ["experiment=mosei_workspace", f"data.root={root}", "data.format=csd", "data.fold_file=folds.json",
            "model.net.hidden_dim=8", "model.net.workspace_dim=8", "data.batch_size=4", *SHORT]


def minari(root: Path) -> list[str]:
    from helpers.minari import write_cartpole

    write_cartpole(root, CARTPOLE, episodes=4, max_steps=20, seed=1)
    return ["experiment=minari_active_inference", f"data.root={root}", f"data.dataset_id={CARTPOLE}",
            "data.horizon=3", "model.planning_horizon=3", "data.batch_size=8", "data.val_fraction=0.25",
            "model.net.hidden_dim=8", "callbacks.rollout_eval=null", "trainer.limit_test_batches=1", *SHORT]


@dataclass(frozen=True)
class Case:
    overrides: Callable[[Path], list[str]]
    phase: str
    sometimes: tuple[str, ...] = field(default=())


CASES = {
    "event_snn": Case(lambda root: [*FAST, "trainer.num_sanity_val_steps=0"], "EventSNN"),
    "vision_snn": Case(images, "VisionSNN"),  # 6 classes: top-5 accuracy too
    "brain_ai": Case(brain_ai, "BrainAIPhase"),
    # other NAB profiles; the test's rate only when it streams files the fit did not (train=false)
    "htm": Case(nab, "HTMPhase", sometimes=("test/nab_*", "test/rows_per_s")),
    "meta": Case(omniglot, "MAML"),
    "reasoning": Case(babi, "ReasoningPhase"),
    "workspace": Case(mosei, "WorkspacePhase"),
    "active_inference": Case(minari, "ActiveInferencePhase"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_short_run_logs_exactly_the_declared_names(name: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    case = CASES[name]
    cfg = compose_cfg(tmp_path / "run", case.overrides(tmp_path / "data"))
    assert str(cfg.model._target_).endswith(f".{case.phase}")
    phase, by_callbacks = declared_metrics(OmegaConf.to_container(cfg, resolve=True))
    assert phase, f"{case.phase} declares no logged_metrics"
    logged = set(run(cfg))
    undeclared = sorted(n for n in logged if not is_logged(n, phase | by_callbacks))
    assert not undeclared, f"{case.phase} logs names it does not declare: {undeclared}"
    never = sorted(d for d in phase - set(case.sometimes) if not any(is_logged(n, {d}) for n in logged))
    assert not never, f"{case.phase} declares names the run never logged: {never} (logged: {sorted(logged)})"
