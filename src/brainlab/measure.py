"""`brainlab measure ckpt_path=<.ckpt> [key=value ...]`: a checkpoint's neuromorphic metrics on its test set.

The run's saved config is tested as `eval` does, with only the neuromorphic callback. The NeuroBench-style report
(`brainlab.metrics.neuromorphic` for the definitions: effective SynOps and MACs, dense ops, activation and
connection sparsity, footprint, membrane updates, energy, per-layer sparsity and firing rates, silent or saturated
layers) is printed and written to `neuromorphic.json` / `.md` in a new folder beside the checkpoint's run dir
(`paths.output_dir=...` to choose another), with the checkpoint and its test metrics (accuracy, loss) added.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from brainlab.core.errors import BrainlabError, ConfigError
from brainlab.core.paths import compose_config

#: callbacks a measurement does not need (the checkpoint is read, never written)
QUIET = ("model_checkpoint", "step_checkpoint", "lr_monitor", "progress_bar", "target_table", "spike_stats",
         "snn_media")


def measure(argv: Sequence[str]) -> Path:
    """Test the checkpoint named by `ckpt_path=...` in `argv`; returns the folder holding `neuromorphic.md`."""
    from brainlab.callbacks.neuromorphic import write_report
    from brainlab.eval import evaluate

    args = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith(("+", "~")))
    if "ckpt_path" not in args:
        raise ConfigError("ckpt_path=<checkpoint> is required: brainlab measure ckpt_path=<run>/checkpoints/<f>.ckpt")
    ckpt = Path(args["ckpt_path"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.get("paths.output_dir") or ckpt.resolve().parent.parent / f"measure-{stamp}")
    overrides = [a for a in argv if not a.startswith("paths.output_dir=")]
    overrides += [f"paths.output_dir={out}", *(f"callbacks.{name}=null" for name in QUIET)]
    current = compose_config("eval", overrides, "brainlab measure")
    # `callbacks.neuromorphic` is named so that eval takes it from the current tree, not from the run's saved
    # config (a run may have switched the counting off)
    taken = [a for a in overrides if not a.startswith("ckpt_path=")] + ["callbacks.neuromorphic=current"]
    metrics = evaluate(ckpt, current, taken)
    if "test/synops" not in metrics or not (out / "neuromorphic.json").exists():
        raise ConfigError(f"ckpt_path={ckpt}: the net has no spiking layers, so there are no neuromorphic metrics")
    summary = json.loads((out / "neuromorphic.json").read_text())
    summary["checkpoint"] = str(ckpt.resolve())
    summary["test_metrics"] = {k: v for k, v in metrics.items() if k in ("test/acc", "test/loss")}
    write_report(summary, out)
    header = f"# Neuromorphic metrics of `{ckpt}`\n\n"
    header += "".join(f"{k}: {v:.4g}  \n" for k, v in summary["test_metrics"].items())
    (out / "neuromorphic.md").write_text(header + "\n" + (out / "neuromorphic.md").read_text())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        out = measure(list(sys.argv[1:] if argv is None else argv))
    except BrainlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((out / "neuromorphic.md").read_text())
    print(f"wrote {out / 'neuromorphic.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
