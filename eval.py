"""Evaluate: `python eval.py ckpt_path=<path> [key=value ...]` (Hydra)."""

import hydra
from omegaconf import DictConfig

from brainlab.boundary import hydra_one_line_errors
from brainlab.eval import main as eval_main


@hydra.main(version_base="1.3", config_path="conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> float | None:
    return eval_main(cfg)


if __name__ == "__main__":
    with hydra_one_line_errors():  # Hydra's own errors (composition, run dir) as one line too
        main()
