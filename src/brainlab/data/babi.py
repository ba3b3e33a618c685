"""bAbI question answering (Weston et al. 2015): the 20 tasks, read from the real release layout.

The archive `tasks_1-20_v1-2.tar.gz` unpacks to `tasks_1-20_v1-2/<variant>/`, with
`qa<N>_<name>_{train,test}.txt` (variants en, en-10k, hn, hn-10k, shuffled, shuffled-10k) or
`qa<N>_{train,valid,test}.txt` (en-valid, en-valid-10k). Each line is `<id> <text>`; ids restart at 1 with
every new story; a question line is `<id> <question>\t<answer>\t<supporting ids>`, where the answer may be a
comma-separated list (tasks 8, 19) and the supporting ids name earlier statement lines of the same story.

Every question becomes one sample: the story's statements so far (the memory), the question, the answer
(one class per answer string, e.g. `milk,football` or `n,w`), and the supporting facts as memory slots.
Batches are dicts of int64 tensors: `story (B, M, L)`, `query (B, Lq)`, `answer (B,)`, `task (B,)`,
`support (B, S)` (memory slots of the supporting facts in the file's order, -1 padded).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from brainlab.core.babi_tasks import TASK_NAMES
from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import SplitDataModule, missing_data
from brainlab.data.splits import check_fraction

log = logging.getLogger(__name__)

RELEASE = "tasks_1-20_v1-2"
ARCHIVE = "tasks_1-20_v1-2.tar.gz"
URL = "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz"
VARIANTS = ("en", "en-10k", "hn", "hn-10k", "shuffled", "shuffled-10k", "en-valid", "en-valid-10k")
#: Questions per task in the published release: 1000 train (10000 for *-10k) and 1000 test;
#: the en-valid* folders split the same training questions into train + valid.
TEST_QUESTIONS = 1000
PAD, UNK = "<pad>", "<unk>"
PUNCTUATION = ".?!,;:\u0964"  # \u0964: the Devanagari full stop of the hn variants


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words with sentence punctuation removed (`Where is Mary?` -> where, is, mary)."""
    for mark in PUNCTUATION:
        text = text.replace(mark, " ")
    return tuple(text.lower().split())


@dataclass(frozen=True)
class BabiExample:
    """One question with the statements of its story before it.

    `support` indexes `sentences` (chronological); `support_ids` are the file's line ids, in the file's order.
    """

    task: int
    story: int
    sentences: tuple[tuple[str, ...], ...]
    sentence_ids: tuple[int, ...]
    question: tuple[str, ...]
    answer: str
    support: tuple[int, ...]
    support_ids: tuple[int, ...]

    @property
    def answers(self) -> tuple[str, ...]:
        """The answer as a list (`milk,football` -> milk, football; `nothing` -> nothing)."""
        return tuple(a.strip() for a in self.answer.split(","))


def parse_babi(lines: Iterable[str], task: int = 0, source: str = "<lines>") -> list[BabiExample]:
    """Parse bAbI lines into one example per question; refuses malformed lines naming `source:line`.

    A supporting id naming an earlier question line (no statement, so no memory slot) is left out of
    `support` and counted in a warning; an id naming no earlier line of the story is corruption.
    """
    examples: list[BabiExample] = []
    story = -1
    last_id = 0
    sentences: list[tuple[str, ...]] = []
    sentence_ids: list[int] = []
    slot_of: dict[int, int] = {}
    dropped = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        head, _, rest = line.partition(" ")
        if not head.isdigit():
            raise DataError(f"{source}:{lineno}: a bAbI line starts with its id, got {line[:40]!r}")
        line_id = int(head)
        if line_id == 1:
            story, sentences, sentence_ids, slot_of = story + 1, [], [], {}
        elif line_id != last_id + 1:
            raise DataError(f"{source}:{lineno}: line id {line_id} follows {last_id} (ids count up from 1 "
                            "within a story): the file is corrupt")
        last_id = line_id
        if "\t" not in rest:
            slot_of[line_id] = len(sentences)
            sentences.append(tokenize(rest))
            sentence_ids.append(line_id)
            continue
        fields = rest.split("\t")
        if len(fields) not in (2, 3) or not fields[1].strip():
            raise DataError(f"{source}:{lineno}: a question line is `<id> <question>\\t<answer>"
                            f"\\t<supporting ids>`, got {line[:60]!r}")
        ids_text = fields[2].split() if len(fields) == 3 else []
        if not all(t.isdigit() for t in ids_text):
            raise DataError(f"{source}:{lineno}: supporting fact ids must be integers, got {fields[2]!r}")
        support_ids = tuple(int(t) for t in ids_text)
        missing = [i for i in support_ids if i not in slot_of and not 1 <= i < line_id]
        if missing:
            raise DataError(f"{source}:{lineno}: supporting fact id(s) {missing} name no earlier line "
                            "of this story: the file is corrupt")
        examples.append(BabiExample(
            task=task, story=story, sentences=tuple(sentences), sentence_ids=tuple(sentence_ids),
            question=tokenize(fields[0]), answer=fields[1].strip().lower(),
            support=tuple(slot_of[i] for i in support_ids if i in slot_of), support_ids=support_ids,
        ))
        dropped += sum(i not in slot_of for i in support_ids)
    if dropped:
        log.warning("%s: %d supporting fact ids name question lines (no statement): left out", source, dropped)
    return examples


def read_babi_file(path: Path, task: int) -> list[BabiExample]:
    """Parse one task file (utf-8)."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse_babi(f, task=task, source=str(path))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a utf-8 text file ({exc.reason}): re-extract {ARCHIVE}") from None


def task_files(variant_dir: Path, task: int) -> dict[str, Path]:
    """The files of one task: {'train', 'test'} or, in the en-valid* layout, {'train', 'valid', 'test'}."""
    plain = {split: variant_dir / f"qa{task}_{split}.txt" for split in ("train", "valid", "test")}
    if plain["train"].is_file():
        return {s: p for s, p in plain.items() if p.is_file()}
    files: dict[str, Path] = {}
    for split in ("train", "test"):
        found = sorted(variant_dir.glob(f"qa{task}_*_{split}.txt"))
        if len(found) > 1:
            raise DataError(f"{variant_dir}: several files for task {task} {split}: "
                            f"{[p.name for p in found]}; keep one")
        if found:
            files[split] = found[0]
    return files


class Vocabulary:
    """Index <-> token; index 0 is padding (words) or unknown (answers); built from training data only."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ConfigError("a vocabulary may not list a token twice")

    @classmethod
    def of_words(cls, examples: Iterable[BabiExample]) -> Vocabulary:
        words: set[str] = set()
        for ex in examples:
            words.update(ex.question)
            for sentence in ex.sentences:
                words.update(sentence)
        return cls([PAD, UNK, *sorted(words)])

    @classmethod
    def of_answers(cls, examples: Iterable[BabiExample]) -> Vocabulary:
        return cls([UNK, *sorted({ex.answer for ex in examples})])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def lookup(self, token: str) -> int:
        """The token's index; unseen tokens map to `<unk>` (1 for words, 0 for answers)."""
        return self.index.get(token, self.index[UNK])

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        return np.asarray([self.lookup(t) for t in tokens], dtype=np.int64)


@dataclass(frozen=True)
class Encoded:
    """One example as arrays: story (n_sentences, max_words), query, answer class, memory slots of support."""

    story: np.ndarray
    query: np.ndarray
    answer: int
    task: int
    support: np.ndarray


def encode(example: BabiExample, words: Vocabulary, answers: Vocabulary, max_memory: int | None) -> Encoded:
    """Keep the `max_memory` most recent statements; supporting facts outside them are dropped."""
    sentences = example.sentences
    offset = max(0, len(sentences) - max_memory) if max_memory else 0
    sentences = sentences[offset:] or ((),)
    width = max(1, max(len(s) for s in sentences))
    story = np.zeros((len(sentences), width), dtype=np.int64)
    for i, sentence in enumerate(sentences):
        story[i, : len(sentence)] = words.encode(sentence)
    support = np.asarray([s - offset for s in example.support if s >= offset], dtype=np.int64)
    query = words.encode(example.question) if example.question else np.zeros(1, dtype=np.int64)
    return Encoded(story, query, answers.lookup(example.answer), example.task, support)


class BabiDataset(Dataset):
    """Encoded examples; `examples` keeps the parsed text (for tables and inspection)."""

    def __init__(self, examples: Sequence[BabiExample], words: Vocabulary, answers: Vocabulary,
                 max_memory: int | None) -> None:
        self.examples = list(examples)
        self.items = [encode(ex, words, answers, max_memory) for ex in self.examples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Encoded:
        return self.items[index]


def collate_babi(items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    """Pad a batch to its own largest story, sentence, question and support list."""
    n = len(items)
    m = max(it.story.shape[0] for it in items)
    length = max(it.story.shape[1] for it in items)
    lq = max(it.query.shape[0] for it in items)
    ns = max(1, max(it.support.shape[0] for it in items))
    story = np.zeros((n, m, length), dtype=np.int64)
    query = np.zeros((n, lq), dtype=np.int64)
    support = np.full((n, ns), -1, dtype=np.int64)
    for i, it in enumerate(items):
        story[i, : it.story.shape[0], : it.story.shape[1]] = it.story
        query[i, : it.query.shape[0]] = it.query
        support[i, : it.support.shape[0]] = it.support
    return {
        "story": torch.from_numpy(story),
        "query": torch.from_numpy(query),
        "answer": torch.tensor([it.answer for it in items], dtype=torch.int64),
        "task": torch.tensor([it.task for it in items], dtype=torch.int64),
        "support": torch.from_numpy(support),
    }


def select_tasks(task: int | None, tasks: Sequence[int] | None) -> list[int]:
    """`data.task=3`, `data.tasks=[1,2,3]`, or all 20 when both are null."""
    if task is not None and tasks is not None:
        raise ConfigError("set data.task or data.tasks, not both (data.task=3 is data.tasks=[3])")
    chosen = [task] if task is not None else list(tasks) if tasks is not None else list(TASK_NAMES)
    bad = [t for t in chosen if isinstance(t, bool) or not isinstance(t, int) or t not in TASK_NAMES]
    if bad or not chosen:
        raise ConfigError(f"data.task(s) must be bAbI task ids 1..20, got {chosen!r}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"data.tasks lists a task twice: {chosen!r}")
    return sorted(chosen)


class BabiDataModule(SplitDataModule):
    """The 20 bAbI tasks (or a subset), trained jointly; one model per task is `data.task=<N>` (or a sweep).

    Vocabulary and answer classes come from the training files of the chosen tasks and travel with the
    checkpoint (the datamodule's `state_dict`, and the phase's hyperparameters).
    """

    dataset_name = "babi"
    collate_fn = staticmethod(collate_babi)

    def __init__(
        self,
        root: str,
        variant: str = "en-10k",
        task: int | None = None,
        tasks: Sequence[int] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        max_memory: int | None = 50,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        download: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.root = Path(root)
        self.variant = check_choice("data.variant", variant, VARIANTS)
        self.task_ids = select_tasks(task, tasks)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.max_memory = None if max_memory is None else positive_int("data.max_memory", max_memory)
        self.split_seed = split_seed
        self.download = download
        self.words: Vocabulary | None = None
        self.answers: Vocabulary | None = None
        self.raw: dict[str, list[BabiExample]] = {}
        self.datasets: dict[str, BabiDataset] = {}
        self.split_hash: str | None = None
        self._full = False

    # --- files -------------------------------------------------------------------------------------
    @property
    def variant_dir(self) -> Path:
        return self.root / RELEASE / self.variant

    @property
    def task_names(self) -> dict[int, str]:
        return {t: TASK_NAMES[t] for t in self.task_ids}

    def prepare_data(self) -> None:
        if self.download and not self.variant_dir.is_dir():
            self.fetch()
        self.locate()

    def fetch(self) -> None:
        """Download and unpack the release into `root` (tonic's downloader); one line on failure."""
        from tonic.download_utils import download_and_extract_archive

        archive = self.root / ARCHIVE
        if archive.exists():
            raise DataError(f"{archive} exists but does not unpack to {self.variant_dir}: check or remove it "
                            f"(it is never overwritten), then unpack {ARCHIVE} into {self.root} by hand")
        try:
            download_and_extract_archive(URL, download_root=str(self.root), filename=ARCHIVE)
        except Exception as exc:  # network errors, an HTML error page instead of a tar.gz, ...
            raise DataError(f"downloading {URL} failed ({type(exc).__name__}: {exc}): fetch {ARCHIVE} by hand "
                            f"and unpack it into {self.root}") from exc
        if not self.variant_dir.is_dir():
            raise DataError(f"{archive} (from {URL}) did not unpack to {self.variant_dir}: the download is "
                            f"not the bAbI release; remove it and unpack {ARCHIVE} into {self.root} by hand")

    def locate(self) -> dict[int, dict[str, Path]]:
        """The files of every chosen task; a missing one is one line naming the archive and the folder."""
        files = {t: task_files(self.variant_dir, t) for t in self.task_ids}
        missing = [t for t, f in files.items() if not {"train", "test"} <= set(f)]
        if missing:
            what = f"task(s) {missing}" if missing != self.task_ids or len(missing) == 1 else "tasks"
            fix = (f"unpack {ARCHIVE} ({URL}) into {self.root} so that {self.variant_dir}/qa1_*_train.txt exists, "
                   "or pass data.download=true")
            files = what if what != "tasks" else "the task files (qa<N>_*_train.txt, qa<N>_*_test.txt)"
            raise missing_data(f"bAbI {self.variant}", self.variant_dir, [files], fix, root=self.root,
                               not_found=f"bAbI {self.variant} {what} not found in {self.variant_dir}: {fix}")
        return files

    # --- vocabulary (travels with the checkpoint) ----------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.words is None or self.answers is None:
            return {}
        return {"vocab": list(self.words.tokens), "answers": list(self.answers.tokens)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            self.use_vocabulary(state["vocab"], state["answers"])

    def use_vocabulary(self, vocab: Sequence[str], answers: Sequence[str]) -> None:
        """Encode with a given (checkpoint's) vocabulary: unseen words become `<unk>`."""
        words, answer_vocab = Vocabulary(vocab), Vocabulary(answers)
        if words == self.words and answer_vocab == self.answers:
            return
        self.words, self.answers = words, answer_vocab
        if self.raw:
            self._encode()

    # --- LightningDataModule ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        files = self.locate()
        train, val, test = [], [], []
        for task, paths in files.items():
            examples = read_babi_file(paths["train"], task)
            if "valid" in paths:
                train += examples
                val += read_babi_file(paths["valid"], task)
            else:
                kept, held = self._split(examples)
                train += kept
                val += held
            test += read_babi_file(paths["test"], task)
        if not train:
            raise DataError(f"bAbI {self.variant}: the training files in {self.variant_dir} hold no "
                            "questions")
        self.raw = {"train": train, "val": val, "test": test}
        self._full = self._is_complete(files)
        if self.words is None or self.answers is None:
            self.words, self.answers = Vocabulary.of_words(train), Vocabulary.of_answers(train)
        self._encode()
        log.info("bAbI %s tasks %s: %d train / %d val / %d test questions, %d words, %d answers, "
                 "validation split %s%s", self.variant, self.task_ids, len(train), len(val), len(test),
                 len(self.words), len(self.answers),
                 f"seed {self.split_seed} hash {self.split_hash}" if self.split_hash else "from valid files",
                 "" if self._full else " (not the complete release)")

    def _encode(self) -> None:
        assert self.words is not None and self.answers is not None
        self.datasets = {s: BabiDataset(ex, self.words, self.answers, self.max_memory)
                         for s, ex in self.raw.items()}
        dropped = sum(len(ex.support) - len(it.support)
                      for ds in self.datasets.values() for ex, it in zip(ds.examples, ds.items, strict=True))
        if dropped:
            log.warning("%d supporting facts lie beyond the %s most recent statements (data.max_memory)",
                        dropped, self.max_memory)

    def _split(self, examples: list[BabiExample]) -> tuple[list[BabiExample], list[BabiExample]]:
        """Hold out a seeded `val_fraction` of each task's training stories (whole stories, never parts)."""
        stories = sorted({ex.story for ex in examples})
        if len(stories) < 2:
            raise DataError(f"bAbI task {examples[0].task if examples else '?'}: the training file has fewer "
                            "than 2 stories, too few to hold out a validation split")
        n_val = min(len(stories) - 1, max(1, int(round(len(stories) * self.val_fraction))))
        task = examples[0].task
        gen = torch.Generator().manual_seed(self.split_seed * 1000 + task)
        order = torch.randperm(len(stories), generator=gen).tolist()
        held = {stories[i] for i in order[:n_val]}
        digest = hashlib.sha256((self.split_hash or "").encode() + repr((task, sorted(held))).encode())
        self.split_hash = digest.hexdigest()[:12]
        return [ex for ex in examples if ex.story not in held], [ex for ex in examples if ex.story in held]

    def _is_complete(self, files: Mapping[int, Mapping[str, Path]]) -> bool:
        """All 20 tasks, each with the published question counts."""
        if self.task_ids != list(TASK_NAMES):
            return False
        per_task_train = 10000 if self.variant.endswith("10k") else 1000
        for task in self.task_ids:
            n_train = sum(1 for ex in self.raw["train"] + self.raw["val"] if ex.task == task)
            n_test = sum(1 for ex in self.raw["test"] if ex.task == task)
            if n_train != per_task_train or n_test != TEST_QUESTIONS:
                return False
        return True

    @property
    def is_full_dataset(self) -> bool:
        """True only for all 20 tasks of a complete release variant (never for fixtures or a task subset)."""
        return self._full
