"""The integrated model's parameter table, built on torch's meta device (no memory, seconds).

    python -m brainlab.params model=brain_ai preset=7b       # any train.py overrides

Composes `conf/train.yaml` with the overrides, builds `model.net` on the meta device and prints one row per
part: trained parameters, rule-learned buffers (the HTM permanences), their sum, the guide's count
(REFERENCE.md; for other presets pro rata to `scale.params`, or to the model's own total without one), the
deviation and OK / over / under against `scale.tolerance`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config
from brainlab.nets.brain_ai.model import named_rule_buffers
from brainlab.train import exit_with_one_line

#: the guide's 7B parameter distribution (REFERENCE.md, "the guide")
GUIDE_7B = {
    "vision": 300e6, "text": 2000e6, "audio": 300e6, "snn_core": 500e6, "htm": 200e6, "workspace": 1500e6,
    "decision": 500e6, "reasoning": 800e6, "meta": 100e6, "engram": 800e6,
}
GUIDE_TOTAL = 7.0e9
LABELS = {
    "vision": "vision encoder (ViT)", "text": "text encoder", "audio": "audio encoder (wav2vec2-style)",
    "snn_core": "SNN core (4 spiking layers)", "htm": "HTM layer", "workspace": "global workspace",
    "decision": "decision heads", "reasoning": "symbolic reasoning", "meta": "meta-learning",
    "engram": "engram memory",
}


@dataclass(frozen=True)
class Row:
    part: str
    trained: int
    rule: int
    reference: float | None
    tolerance: float | None

    @property
    def total(self) -> int:
        return self.trained + self.rule

    @property
    def deviation(self) -> float | None:
        return None if not self.reference else self.total / self.reference - 1.0

    @property
    def status(self) -> str:
        if self.deviation is None or self.tolerance is None:
            return "–"
        if abs(self.deviation) <= self.tolerance:
            return "OK"
        return "over" if self.deviation > 0 else "under"


def count(module: nn.Module | None) -> tuple[int, int]:
    """(parameters, rule-learned buffers: those a module lists in `rule_buffers`)."""
    if module is None:
        return 0, 0
    params = sum(p.numel() for p in module.parameters())
    rule = sum(b.numel() for _, b in named_rule_buffers(module))
    return params, rule


def build_on_meta(cfg: DictConfig) -> nn.Module:
    """`model.net` with every tensor on the meta device (shapes only)."""
    with torch.device("meta"):
        return instantiate(cfg.model.net, _convert_="all")


def table(cfg: DictConfig, net: nn.Module | None = None) -> list[Row]:
    """One row per part of the guide, then `other` (glue) if any, then `total`."""
    if "brain_ai" not in str(cfg.model.get("_target_", "")):
        raise ConfigError("the parameter table is for the integrated model: pass model=brain_ai (and preset=...)")
    net = build_on_meta(cfg) if net is None else net
    scale = cfg.get("scale") or {}
    budget, tol = scale.get("params"), scale.get("tolerance")
    all_trained, all_rule = count(net)
    # no budget (tiny): the guide's shares of this model's own total
    ratio = (float(budget) if budget else all_trained + all_rule) / GUIDE_TOTAL
    rows = [Row(name, *count(part), GUIDE_7B[name] * ratio, tol) for name, part in net.parts().items()]
    other = (all_trained - sum(r.trained for r in rows), all_rule - sum(r.rule for r in rows))
    if any(other):
        rows.append(Row("other", *other, None, None))
    rows.append(Row("total", all_trained, all_rule, GUIDE_TOTAL * ratio, tol))
    return rows


def human(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"


def format_table(rows: Sequence[Row], preset: str) -> str:
    head = "guide" if preset == "7b" else "guide pro rata"
    lines = [f"| part ({preset}) | trained | rule-learned | total | {head} | ± | status |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ref = human(r.reference) if r.reference else "–"
        dev = f"{r.deviation:+.1%}" if r.deviation is not None else "–"
        lines.append(f"| {LABELS.get(r.part, r.part)} | {human(r.trained)} | {human(r.rule) if r.rule else '–'} | "
                     f"{human(r.total)} | {ref} | {dev} | {r.status} |")
    return "\n".join(lines)


def compose_train(overrides: Sequence[str]) -> DictConfig:
    return compose_config("train", overrides)


def main(argv: Sequence[str] | None = None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = compose_train(argv or ["model=brain_ai", "preset=7b"])
        preset = str((cfg.get("scale") or {}).get("preset", "model defaults"))
        text = format_table(table(cfg), preset)
    except Exception as exc:  # a brainlab error ends with its one line
        exit_with_one_line(exc)
    print(text)
    return text


if __name__ == "__main__":
    main()
