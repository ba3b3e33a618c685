"""`hydra.sweeper._target_: hydra_plugins.brainlab_sweeper.optuna.BrainlabOptunaSweeper` (conf/hparams_search/optuna):
hydra-optuna-sweeper with failed trials recorded, a persistent study, resume and results always written. The
implementation lives in brainlab.utils.optuna_sweeper; this module only registers it where Hydra looks."""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class BrainlabOptunaSweeper(OptunaSweeper):
    def __init__(self, **kwargs: Any) -> None:
        from brainlab.utils.optuna_sweeper import ResumableOptunaSweeperImpl

        super().__init__(**kwargs)
        upstream = self.sweeper
        self.sweeper = ResumableOptunaSweeperImpl.__new__(ResumableOptunaSweeperImpl)
        self.sweeper.__dict__.update(upstream.__dict__)
