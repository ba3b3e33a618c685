"""Train: `python train.py [experiment=...] [group=option ...] [key=value ...]` (Hydra)."""

import hydra
from omegaconf import DictConfig

from brainlab.boundary import hydra_one_line_errors
from brainlab.train import main as run_main


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    return run_main(cfg)


if __name__ == "__main__":
    with hydra_one_line_errors():  # Hydra's own errors (composition, run dir) as one line too
        main()
