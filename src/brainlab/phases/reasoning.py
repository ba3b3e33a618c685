"""Phase 6: neuro-symbolic question answering on bAbI (all 20 tasks, or a subset).

The net (a multi-hop memory network) answers from the story; the symbolic side is the supporting-fact ids
the data gives for free. With `model.supervision.weight > 0` each hop's attention is trained to land on
the supporting facts (`mode=set`: attention mass on the set; `mode=ordered`: hop k on the k-th listed fact),
and at every stage the hops' arg-max statements are read out as the model's proof and scored against the
gold facts (`<stage>/support_recall`), with or without supervision. `weight=0` is the plain MemN2N baseline
(`experiment=babi_reasoning_nosupervision`).

Logged: `<stage>/loss`, `<stage>/answer_loss`, `<stage>/support_loss`, `<stage>/acc` (all questions),
`<stage>/acc/qa<N>` per task, `<stage>/mean_acc` (mean over tasks: the bAbI measure), `<stage>/failed_tasks`
(tasks below `pass_threshold`), `<stage>/support_recall` (and `/qa<N>`), `val/mean_acc_best`. The test table goes to the
terminal, the loggers, and `babi_tasks.md` in the run dir.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from brainlab.core.babi_tasks import TASK_NAMES
from brainlab.core.checks import check_choice
from brainlab.core.datamodule import QuestionData
from brainlab.core.errors import ConfigError
from brainlab.phases.base import Phase, per_stage

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")
MODES = ("set", "ordered")
UNKNOWN_ANSWER = 0  # answer class 0 is `<unk>`: never a training target, never predicted


def supervision_loss(attention: torch.Tensor, support: torch.Tensor, mode: str) -> torch.Tensor:
    """Attention supervision from supporting facts.

    `attention (B, hops, M)`, `support (B, S)` memory slots (-1 = none). `set`: -log of each hop's attention
    mass on the supporting set; `ordered`: cross-entropy of hop k on the k-th fact (the last one for later
    hops). Questions without a supporting fact in memory are left out; 0 when none has one.
    """
    valid = support >= 0
    has = valid.any(-1)
    if not has.any():
        return attention.new_zeros(())
    attention, support, valid = attention[has], support[has], valid[has]
    eps = 1e-6  # bounds the loss of a hop that misses every supporting fact (~13.8)
    if mode == "set":
        gold = torch.zeros_like(attention[:, 0]).scatter_(1, support.clamp_min(0), valid.to(attention.dtype))
        mass = (attention * gold.unsqueeze(1)).sum(-1)
        return -(mass.clamp_min(eps)).log().mean()
    hops = attention.shape[1]
    n = valid.sum(-1, keepdim=True)  # facts per question
    k = torch.arange(hops, device=attention.device).unsqueeze(0)
    target = support.gather(1, torch.minimum(k, n - 1))  # (B, hops)
    picked = attention.gather(2, target.unsqueeze(-1)).squeeze(-1)
    return -(picked.clamp_min(eps)).log().mean()


def proof_recall(attention: torch.Tensor, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per question: the fraction of gold supporting facts among the hops' arg-max statements.

    Returns `(recall (B',), mask (B,))` for the questions that have a supporting fact in memory.
    """
    valid = support >= 0
    has = valid.any(-1)
    picked = attention.argmax(-1)  # (B, hops)
    hit = (support.unsqueeze(-1) == picked.unsqueeze(1)).any(-1) & valid  # (B, S)
    recall = hit.sum(-1).to(torch.float32) / valid.sum(-1).clamp_min(1).to(torch.float32)
    return recall[has], has


def parse_supervision(supervision: Mapping[str, Any] | None) -> tuple[float, str]:
    """`model.supervision` -> (weight, mode); weight 0 (or no block) switches supervision off."""
    sup = dict(supervision or {})
    unknown = set(sup) - {"weight", "mode"}
    if unknown:
        raise ConfigError(f"model.supervision has unknown key(s) {sorted(unknown)}; it takes weight, mode")
    weight = float(sup.get("weight", 0.0))
    if weight < 0:
        raise ConfigError(f"model.supervision.weight must be >= 0, got {weight}")
    return weight, check_choice("model.supervision.mode", str(sup.get("mode", "set")), MODES)


def task_table(per_task: Mapping[int, float], threshold: float,
               proof: Mapping[int, float] | None = None) -> list[dict[str, Any]]:
    """Rows (task, name, accuracy, pass, proof recall or None) in task order."""
    proof = proof or {}
    return [{"task": t, "name": TASK_NAMES.get(t, "?"), "accuracy": acc, "pass": acc >= threshold,
             "proof": proof.get(t)} for t, acc in sorted(per_task.items())]


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def table_markdown(rows: Sequence[Mapping[str, Any]], threshold: float, note: str = "") -> str:
    """The per-task table as GitHub markdown, with the mean and the number of failed tasks."""
    lines = [f"# bAbI per-task test accuracy (pass >= {threshold:.0%})", ""]
    if note:
        lines += [note, ""]
    lines += ["| task | name | accuracy | pass | proof recall |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['name']} | {r['accuracy']:.4f} | {'yes' if r['pass'] else 'no'} | "
              f"{fmt(r.get('proof'))} |" for r in rows]
    if rows:
        mean = sum(r["accuracy"] for r in rows) / len(rows)
        failed = sum(not r["pass"] for r in rows)
        lines += [f"| mean | {len(rows)} tasks | {mean:.4f} | {'yes' if mean >= threshold else 'no'} | |",
                  "", f"failed tasks: {failed} of {len(rows)}. proof recall: the share of the gold supporting "
                  "facts among the statements the hops attend to most (the model's proof)."]
    return "\n".join(lines) + "\n"


class ReasoningPhase(Phase):
    """Question answering with a memory network, per-task accuracy, and supporting-fact supervision."""

    #: per-task names end in `qa<task>` (the tasks the data holds)
    logged_metrics = (*per_stage("loss", "answer_loss", "support_loss", "acc", "mean_acc", "failed_tasks",
                                 "support_recall", "acc/qa*", "support_recall/qa*"),
                      "val/mean_acc_best", "val/acc_best")

    #: written into the run dir at test time; targets.md links it
    report_files = ["babi_tasks.md"]

    def __init__(
        self,
        supervision: Mapping[str, Any] | None = None,
        pass_threshold: float = 0.95,
        vocab: Sequence[str] | None = None,
        answers: Sequence[str] | None = None,
        tasks: Sequence[int] | None = None,
        **base: Any,
    ) -> None:
        weight, mode = parse_supervision(supervision)
        if not 0.0 < pass_threshold <= 1.0:
            raise ConfigError(f"model.pass_threshold must be in (0, 1], got {pass_threshold!r}")
        super().__init__(**base)
        self.hparams["supervision"] = {"weight": weight, "mode": mode}  # plain types: checkpoints load
        self.supervision_weight, self.supervision_mode = weight, mode
        self.pass_threshold = pass_threshold
        self.vocab = list(vocab) if vocab is not None else None
        self.answers = list(answers) if answers is not None else None
        self.tasks: list[int] = list(tasks) if tasks is not None else []
        self.per_task: dict[str, dict[int, float]] = {}
        self.per_task_proof: dict[str, dict[int, float]] = {}
        self._counts: dict[str, dict[int, int]] = {s: {} for s in STAGES}  # questions seen per task
        self.val_mean_acc_best = MaxMetric()
        self.val_acc_best = MaxMetric()
        self.mean_loss = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        self.support_recall = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        self.acc: torch.nn.ModuleDict | None = None
        self.task_acc: torch.nn.ModuleDict | None = None
        self.task_recall: torch.nn.ModuleDict | None = None
        if self.vocab is not None and self.answers is not None:
            self._build(self.tasks or list(TASK_NAMES))

    # --- building once the vocabulary is known -----------------------------------------------------
    def _build(self, tasks: Sequence[int]) -> None:
        """Build the net's embeddings and the per-task metrics for `tasks`."""
        assert self.vocab is not None and self.answers is not None
        build = getattr(self.net, "build", None)
        if callable(build):
            build(len(self.vocab), len(self.answers))
        if self.task_acc is not None and sorted(int(k) for k in self.task_acc["test_"]) == sorted(tasks):
            return
        n = len(self.answers)

        def accuracy() -> MulticlassAccuracy:
            return MulticlassAccuracy(num_classes=n, average="micro")

        self.acc = torch.nn.ModuleDict({f"{s}_": accuracy() for s in STAGES}).to(self.device)
        self.task_acc = torch.nn.ModuleDict(
            {f"{s}_": torch.nn.ModuleDict({str(t): accuracy() for t in tasks}) for s in STAGES}
        ).to(self.device)
        self.task_recall = torch.nn.ModuleDict(
            {f"{s}_": torch.nn.ModuleDict({str(t): MeanMetric() for t in tasks}) for s in STAGES}
        ).to(self.device)

    def setup(self, stage: str) -> None:
        """Take vocabulary and tasks from the datamodule (or give it the checkpoint's vocabulary)."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        if not isinstance(dm, QuestionData):
            if self.vocab is None:
                raise ConfigError("the reasoning phase needs a bAbI-style datamodule (data=babi) or a "
                                  "checkpoint that holds the vocabulary")
            return
        dm.setup(stage)
        if self.vocab is None or self.answers is None:
            self.vocab, self.answers = list(dm.words.tokens), list(dm.answers.tokens)
        else:
            dm.use_vocabulary(self.vocab, self.answers)
        self.tasks = list(dm.task_ids)
        self.hparams.update(vocab=self.vocab, answers=self.answers, tasks=self.tasks)
        self._build(self.tasks)

    # --- one step ---------------------------------------------------------------------------------------
    def forward(self, story: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(logits (B, answers), attention (B, hops, M))`; the `<unk>` answer is never predicted."""
        logits, attention = self.net(story, query)
        logits = logits.clone()
        logits[:, UNKNOWN_ANSWER] = torch.finfo(logits.dtype).min
        return logits, attention

    def step(self, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        assert self.acc is not None and self.task_acc is not None and self.task_recall is not None
        logits, attention = self(batch["story"], batch["query"])
        answer = batch["answer"]
        known = answer != UNKNOWN_ANSWER  # an answer unseen in training counts as wrong, adds no loss
        answer_loss = F.cross_entropy(logits[known], answer[known]) if known.any() else logits.new_zeros(())
        support_loss = supervision_loss(attention, batch["support"], self.supervision_mode)
        loss = answer_loss
        if self.supervision_weight:
            loss = loss + self.supervision_weight * support_loss
        key = f"{stage}_"
        preds = logits.detach().argmax(-1)
        self.acc[key](preds, answer)
        for task in batch["task"].unique().tolist():
            if str(task) not in self.task_acc[key]:
                raise ConfigError(f"batch holds bAbI task {task}, which the model was not set up for")
            rows = batch["task"] == task
            self.task_acc[key][str(task)](preds[rows], answer[rows])
            self._counts[stage][task] = self._counts[stage].get(task, 0) + int(rows.sum())
        recall, has = proof_recall(attention.detach(), batch["support"])
        if has.any():
            self.support_recall[key](recall)
            for task in batch["task"][has].unique().tolist():
                self.task_recall[key][str(task)](recall[batch["task"][has] == task])
        self.mean_loss[key](loss.detach(), weight=answer.shape[0])
        on_step = stage == "train"
        size = answer.shape[0]
        self.log(f"{stage}/loss", self.mean_loss[key], on_step=on_step, on_epoch=True, prog_bar=True,
                 batch_size=size)
        self.log(f"{stage}/answer_loss", answer_loss.detach(), on_epoch=True, batch_size=size)
        self.log(f"{stage}/support_loss", support_loss.detach(), on_epoch=True, batch_size=size)
        return loss

    def predict_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Answer classes (index into `self.answers`), and each hop's attended statement (the proof)."""
        self.reset_states()
        logits, attention = self(batch["story"], batch["query"])
        return {"answer": logits.argmax(-1), "proof": attention.argmax(-1), "attention": attention}

    # --- epoch ends: per-task accuracy ------------------------------------------------------------
    def _epoch_end(self, stage: str) -> dict[int, float]:
        assert self.acc is not None and self.task_acc is not None and self.task_recall is not None
        key = f"{stage}_"
        # every rank computes the same tasks (a metric's compute() syncs across DDP ranks)
        tasks = sorted(int(k) for k in self.task_acc[key])
        counts = torch.tensor([self._counts[stage].get(t, 0) for t in tasks], device=self.device)
        if self._trainer is not None:
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        per_task = {t: float(self.task_acc[key][str(t)].compute()) for t, n in zip(tasks, counts.tolist(),
                                                                                       strict=True) if n > 0}
        proof = {t: float(self.task_recall[key][str(t)].compute()) for t in per_task}  # nan: no facts
        proof = {t: r for t, r in proof.items() if not math.isnan(r)}
        for metric in [*self.task_acc[key].values(), *self.task_recall[key].values()]:
            metric.reset()
        self._counts[stage] = {}
        if not per_task:
            self.acc[key].reset()
            self.support_recall[key].reset()
            return per_task
        mean = sum(per_task.values()) / len(per_task)
        values = {f"{stage}/acc/qa{t}": acc for t, acc in per_task.items()}
        values.update({f"{stage}/support_recall/qa{t}": r for t, r in proof.items()})
        values[f"{stage}/mean_acc"] = mean
        values[f"{stage}/failed_tasks"] = float(sum(a < self.pass_threshold for a in per_task.values()))
        values[f"{stage}/acc"] = float(self.acc[key].compute())
        self.acc[key].reset()
        recall = float(self.support_recall[key].compute())  # nan when no question had supporting facts
        self.support_recall[key].reset()
        if not math.isnan(recall):
            values[f"{stage}/support_recall"] = recall
        self.log_dict(values, prog_bar=False)
        self.per_task[stage] = per_task
        self.per_task_proof[stage] = proof
        return per_task

    def on_train_start(self) -> None:
        self.val_mean_acc_best.reset()
        self.val_acc_best.reset()

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        per_task = self._epoch_end("val")
        if self.trainer.sanity_checking or not per_task:
            return
        self.val_mean_acc_best(sum(per_task.values()) / len(per_task))
        self.val_acc_best(self.trainer.callback_metrics["val/acc"])
        self.log("val/mean_acc_best", self.val_mean_acc_best.compute(), prog_bar=True)
        self.log("val/acc_best", self.val_acc_best.compute())

    def on_test_epoch_end(self) -> None:
        per_task = self._epoch_end("test")
        if per_task:
            self.report(per_task, self.per_task_proof["test"])

    @rank_zero_only
    def report(self, per_task: Mapping[int, float], proof: Mapping[int, float]) -> None:
        """The per-task table: terminal, loggers (as text where they take it) and `babi_tasks.md`."""
        rows = task_table(per_task, self.pass_threshold, proof)
        dm = self.trainer.datamodule
        babi = isinstance(dm, QuestionData)
        note = (f"bAbI {dm.variant}, complete release" if babi and dm.is_full_dataset else
                f"data: {dm.variant_dir if babi else '?'} is not the complete bAbI release (fixture, subset "
                "or partial copy): these are not bAbI results")
        text = table_markdown(rows, self.pass_threshold, note)
        out = Path(self.trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "babi_tasks.md").write_text(text)
        log.info("per-task test accuracy written to %s", out / "babi_tasks.md")
        columns = ["task", "name", "accuracy", "pass", "proof_recall"]
        data = [[r["task"], r["name"], r["accuracy"], r["pass"], r["proof"]] for r in rows]
        for logger in self.trainer.loggers:
            if callable(getattr(logger, "log_text", None)):  # W&B: a table
                logger.log_text(key="test/babi_tasks", columns=columns, data=data)
            elif callable(getattr(getattr(logger, "experiment", None), "add_text", None)):  # TensorBoard
                logger.experiment.add_text("test/babi_tasks", text, global_step=self.global_step)
        print_table(rows, self.pass_threshold, note)


def print_table(rows: Sequence[Mapping[str, Any]], threshold: float, note: str) -> None:
    """The per-task table on the terminal (rich), like the run's target table."""
    table = Table(title=f"bAbI per-task test accuracy (pass >= {threshold:.0%})", caption=note)
    for col in ("task", "name", "accuracy", "pass", "proof recall"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["task"]), r["name"], f"{r['accuracy']:.4f}",
                      "[green]yes[/]" if r["pass"] else "[red]no[/]", fmt(r.get("proof")))
    if rows:
        mean = sum(r["accuracy"] for r in rows) / len(rows)
        failed = sum(not r["pass"] for r in rows)
        table.add_row("mean", f"{len(rows)} tasks, {failed} failed", f"{mean:.4f}",
                      "[green]yes[/]" if mean >= threshold else "[red]no[/]")
    Console(width=120).print(table)
