"""The bAbI reader on generated files in the release's exact layout and line format."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.babi import SAMPLE, write_release

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.babi import (
    TASK_NAMES,
    BabiDataModule,
    BabiExample,
    Vocabulary,
    collate_babi,
    encode,
    parse_babi,
    task_files,
    tokenize,
)


def datamodule(root: Path, **kw) -> BabiDataModule:
    kw.setdefault("variant", "en")
    return BabiDataModule(root=str(root), **kw)


def test_parser_reads_statements_questions_multi_answers_and_story_restarts() -> None:
    examples = parse_babi(io.StringIO(SAMPLE), task=8, source="sample")
    assert len(examples) == 3
    first, second, third = examples
    assert first.sentences == (("mary", "moved", "to", "the", "bathroom"),
                               ("john", "went", "to", "the", "hallway"))
    assert first.question == ("where", "is", "mary")
    assert (first.answer, first.support, first.support_ids, first.story) == ("bathroom", (0,), (1,), 0)
    # the question at line 3 is no memory: statements 1, 2, 4, 5 are slots 0..3
    assert second.sentence_ids == (1, 2, 4, 5)
    assert second.answer == "milk,football" and second.answers == ("milk", "football")
    assert second.support == (2, 3) and second.support_ids == (4, 5)
    # the id restarts at 1: a new story with only its own statements
    assert third.story == 1 and third.sentence_ids == (1, 2)
    assert third.sentences[1] == ("the", "office", "is", "west", "of", "the", "kitchen")
    assert third.answers == ("n", "w") and third.support == (0, 1)
    assert all(ex.task == 8 for ex in examples)


def test_supporting_id_of_a_question_line_is_left_out_not_fatal() -> None:
    text = "1 Mary went home.\n2 Where is Mary?\thome\t1\n3 Where is Mary?\thome\t1 2\n"
    last = parse_babi(io.StringIO(text))[-1]
    assert last.support == (0,) and last.support_ids == (1, 2)


def test_tokenizer_drops_sentence_punctuation_and_lowercases() -> None:
    assert tokenize("Where is Mary? ") == ("where", "is", "mary")
    assert tokenize("Mary went to the kitchen.") == ("mary", "went", "to", "the", "kitchen")
    assert tokenize("मैरी घर गई।") == (  # the hn variants' full stop
        "मैरी", "घर", "गई")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 Mary went home.\n3 John went home.\n", r"x:2: line id 3 follows 1"),
        ("1 Mary went home.\n2 Where is Mary?\thome\t5\n", r"x:2: supporting fact id\(s\) \[5\]"),
        ("1 Mary went home.\n2 Where is Mary?\thome\t2\n", r"x:2: supporting fact id\(s\) \[2\]"),
        ("Mary went home.\n", r"x:1: a bAbI line starts with its id"),
        ("1 Mary went home.\n2 Where is Mary?\t\t1\n", r"x:2: a question line is"),
        ("1 Mary went home.\n2 Where is Mary?\thome\tone\n", r"x:2: supporting fact ids must be integers"),
    ],
)
def test_parser_refuses_corrupt_lines_naming_file_and_line(text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_babi(io.StringIO(text), source="x")


def test_generated_release_round_trips_through_the_parser(tmp_path: Path) -> None:
    folder = write_release(tmp_path, "en", tasks=[8, 19], n_stories=30, n_test_stories=3)
    files = task_files(folder, 8)
    assert files["train"].name == "qa8_lists-sets_train.txt"
    assert task_files(folder, 19)["test"].name == "qa19_path-finding_test.txt"
    lists = parse_babi(files["train"].read_text().splitlines(), task=8)
    assert any(len(ex.answers) > 1 for ex in lists), "task 8 style files hold comma-separated answers"
    for ex in lists:  # the supporting facts of a pick-up are the pick-up statements
        if ex.answer != "nothing":
            for slot, obj in zip(ex.support, ex.answers, strict=True):
                assert ex.sentences[slot][-1] == obj and "picked" in ex.sentences[slot]
    path = parse_babi(task_files(folder, 19)["train"].read_text().splitlines(), task=19)
    assert all(len(ex.support) == 2 and len(ex.answers) == 2 for ex in path)


def test_datamodule_reads_all_20_tasks_in_release_layout(tmp_path: Path) -> None:
    write_release(tmp_path, "en", n_stories=10, n_test_stories=4)
    dm = datamodule(tmp_path, batch_size=8)
    dm.setup("fit")
    assert dm.task_ids == list(range(1, 21))
    assert dm.task_names[19] == "path-finding"
    assert {ex.task for ex in dm.raw["train"]} == set(TASK_NAMES)
    assert {ex.task for ex in dm.raw["test"]} == set(TASK_NAMES)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"story", "query", "answer", "task", "support"}
    assert batch["story"].dim() == 3 and batch["story"].dtype == torch.int64
    assert not dm.is_full_dataset, "fixtures are never the published dataset"


def test_task_selection_and_bad_config(tmp_path: Path) -> None:
    write_release(tmp_path, "en", tasks=[1, 2, 3], n_stories=6, n_test_stories=2)
    dm = datamodule(tmp_path, task=3)
    dm.setup()
    assert dm.task_ids == [3] and {ex.task for ex in dm.raw["test"]} == {3}
    assert datamodule(tmp_path, tasks=[2, 1]).task_ids == [1, 2]
    with pytest.raises(ConfigError, match="data.task or data.tasks, not both"):
        datamodule(tmp_path, task=1, tasks=[1])
    with pytest.raises(ConfigError, match="task ids 1..20"):
        datamodule(tmp_path, task=21)
    with pytest.raises(ConfigError, match="data.variant='fr'"):
        datamodule(tmp_path, variant="fr")


def test_missing_dataset_names_archive_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unpack tasks_1-20_v1-2.tar.gz .* into .*data.download=true") as err:
        datamodule(tmp_path / "nowhere", variant="en-10k").setup()
    assert "tasks_1-20_v1-2/en-10k" in str(err.value)
    write_release(tmp_path, "en", tasks=[1], n_stories=4, n_test_stories=2)
    with pytest.raises(DataError, match=r"task\(s\) \[2\] not found"):
        datamodule(tmp_path, tasks=[1, 2]).setup()


def test_download_never_overwrites_an_archive_already_there(tmp_path: Path) -> None:
    (tmp_path / "tasks_1-20_v1-2.tar.gz").write_bytes(b"<html>not a tarball</html>")
    with pytest.raises(DataError, match="exists but does not unpack .* never overwritten"):
        datamodule(tmp_path, download=True).prepare_data()
    assert (tmp_path / "tasks_1-20_v1-2.tar.gz").read_bytes() == b"<html>not a tarball</html>"


def test_en_valid_layout_uses_its_own_validation_files(tmp_path: Path) -> None:
    folder = write_release(tmp_path, "en-valid", tasks=[1, 6], n_stories=20, n_test_stories=4)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("qa1_")) == [
        "qa1_test.txt", "qa1_train.txt", "qa1_valid.txt"]
    dm = datamodule(tmp_path, variant="en-valid", tasks=[1, 6])
    dm.setup()
    valid = sum(len(parse_babi((folder / f"qa{t}_valid.txt").read_text().splitlines())) for t in (1, 6))
    train = sum(len(parse_babi((folder / f"qa{t}_train.txt").read_text().splitlines())) for t in (1, 6))
    assert len(dm.datasets["val"]) == valid and len(dm.datasets["train"]) == train


def test_validation_split_holds_out_whole_stories_seeded(tmp_path: Path) -> None:
    write_release(tmp_path, "en", tasks=[1, 2], n_stories=30, n_test_stories=2)
    dm = datamodule(tmp_path, tasks=[1, 2], val_fraction=0.2, split_seed=3)
    dm.setup()
    for task in (1, 2):
        train = {ex.story for ex in dm.raw["train"] if ex.task == task}
        val = {ex.story for ex in dm.raw["val"] if ex.task == task}
        assert not train & val and len(train | val) == 30 and len(val) == 6
    again = datamodule(tmp_path, tasks=[1, 2], val_fraction=0.2, split_seed=3)
    again.setup()
    assert again.split_hash == dm.split_hash
    other = datamodule(tmp_path, tasks=[1, 2], val_fraction=0.2, split_seed=4)
    other.setup()
    assert other.split_hash != dm.split_hash


def test_vocabulary_comes_from_training_data_only(tmp_path: Path) -> None:
    folder = write_release(tmp_path, "en", tasks=[1], n_stories=6, n_test_stories=2)
    test_file = task_files(folder, 1)["test"]
    test_file.write_text(test_file.read_text() + "1 Zorro went to the moon.\n2 Where is Zorro? \tmoon\t1\n")
    dm = datamodule(tmp_path, tasks=[1])
    dm.setup()
    assert "zorro" not in dm.words.index and "moon" not in dm.answers.index
    last = dm.datasets["test"][len(dm.datasets["test"]) - 1]
    assert last.story[0, 0] == dm.words.lookup("<unk>") == 1
    assert last.answer == 0, "an answer never seen in training is the <unk> class (always counted wrong)"
    state = dm.state_dict()
    assert state["vocab"][:2] == ["<pad>", "<unk>"] and state["answers"][0] == "<unk>"


def test_checkpoint_vocabulary_reencodes_the_data(tmp_path: Path) -> None:
    write_release(tmp_path, "en", tasks=[1], n_stories=6, n_test_stories=2)
    dm = datamodule(tmp_path, tasks=[1])
    dm.setup()
    words = ["<pad>", "<unk>", "mary", "where", "is"]
    dm.load_state_dict({"vocab": words, "answers": ["<unk>", "kitchen"]})
    item = dm.datasets["train"][0]
    assert item.story.max() <= 4 and set(np.unique(item.query)) <= {1, 2, 3, 4}


def test_memory_keeps_the_most_recent_statements() -> None:
    sentences = tuple((f"w{i}",) for i in range(6))
    ex = BabiExample(task=1, story=0, sentences=sentences, sentence_ids=tuple(range(1, 7)), question=("q",),
                     answer="a", support=(1, 4), support_ids=(2, 5))
    words = Vocabulary(["<pad>", "<unk>", "q", *[f"w{i}" for i in range(6)]])
    answers = Vocabulary(["<unk>", "a"])
    enc = encode(ex, words, answers, max_memory=3)
    assert enc.story[:, 0].tolist() == [words.lookup("w3"), words.lookup("w4"), words.lookup("w5")]
    assert enc.support.tolist() == [1], "fact 1 fell out of memory; fact 4 is slot 1 of the last 3"
    assert enc.answer == 1


def test_collate_pads_to_the_batch() -> None:
    words = Vocabulary(["<pad>", "<unk>", "a", "b", "c"])
    answers = Vocabulary(["<unk>", "x"])
    short = BabiExample(1, 0, (("a",),), (1,), ("b",), "x", (0,), (1,))
    long = BabiExample(2, 0, (("a", "b", "c"), ("c",)), (1, 2), ("a", "b"), "x", (1, 0), (2, 1))
    batch = collate_babi([encode(short, words, answers, 50), encode(long, words, answers, 50)])
    assert batch["story"].tolist() == [[[2, 0, 0], [0, 0, 0]], [[2, 3, 4], [4, 0, 0]]]
    assert batch["query"].tolist() == [[3, 0], [2, 3]]
    assert batch["support"].tolist() == [[0, -1], [1, 0]]
    assert batch["task"].tolist() == [1, 2] and batch["answer"].tolist() == [1, 1]


def test_full_dataset_only_with_published_counts_of_all_20_tasks(tmp_path: Path) -> None:
    # one question per story: 1000 train and 1000 test questions per task, as in the release's `en`
    write_release(tmp_path, "en", n_stories=1000, n_test_stories=1000, questions=(1, 1))
    dm = datamodule(tmp_path, max_memory=10)
    dm.setup()
    assert dm.is_full_dataset
    subset = datamodule(tmp_path, tasks=[1, 2])
    subset.setup()
    assert not subset.is_full_dataset, "a mean over some tasks is not bAbI's mean"
