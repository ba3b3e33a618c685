"""Generated bAbI files in the release's exact on-disk format (no bAbI data reaches the test machines).

`write_release(root, ...)` writes `root/tasks_1-20_v1-2/<variant>/qa<N>_<name>_{train,test}.txt` (or
`qa<N>_{train,valid,test}.txt` for en-valid*), each story numbered from 1, questions as
`<id> <question> \\t<answer>\\t<supporting ids>` like the real files (including the space before the tab).
Stories come from small generators with learnable rules: where-is (task 1 style), yes/no (task 6),
carried lists with comma-separated answers (task 8) and two-step paths with answers like `n,w` (task 19).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

from brainlab.data.babi import RELEASE, TASK_NAMES

ACTORS = ["Mary", "John", "Sandra", "Daniel"]
PLACES = ["kitchen", "garden", "hallway", "office", "bathroom", "bedroom"]
OBJECTS = ["apple", "football", "milk"]
MOVES = ["moved to", "went to", "journeyed to", "travelled to"]
DIRECTIONS = {"north": "n", "south": "s", "east": "e", "west": "w"}

# A hand-written file covering every line type, and what parsing it must give.
SAMPLE = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Mary picked up the milk.\n"
    "5 Mary took the football there.\n"
    "6 What is Mary carrying? \tmilk,football\t4 5\n"
    "1 The kitchen is north of the garden.\n"
    "2 The office is west of the kitchen.\n"
    "3 How do you go from the garden to the office?\tn,w\t1 2\n"
)

Story = Callable[[random.Random, int], list[tuple[str, str | None, list[int]]]]


def _two_moves(rng: random.Random, lines: list, last: dict[str, tuple[str, int]]) -> str:
    """Two random moves appended to `lines` (`last`: each actor's place and line number); returns an actor who moved."""
    for _ in range(2):
        actor, place = rng.choice(ACTORS), rng.choice(PLACES)
        lines.append((f"{actor} {rng.choice(MOVES)} the {place}.", None, []))
        last[actor] = (place, len(lines))
    return rng.choice(sorted(last))


def _where_is(rng: random.Random, n_questions: int) -> list[tuple[str, str | None, list[int]]]:
    """Task 1 style: actors move; `Where is X?` -> the last place X moved to (one supporting fact)."""
    lines: list[tuple[str, str | None, list[int]]] = []
    last: dict[str, tuple[str, int]] = {}
    for _ in range(n_questions):
        actor = _two_moves(rng, lines, last)
        lines.append((f"Where is {actor}? ", last[actor][0], [last[actor][1]]))
    return lines


def _yes_no(rng: random.Random, n_questions: int) -> list[tuple[str, str | None, list[int]]]:
    """Task 6 style: `Is X in the P?` -> yes / no from X's last move."""
    lines: list[tuple[str, str | None, list[int]]] = []
    last: dict[str, tuple[str, int]] = {}
    for _ in range(n_questions):
        actor = _two_moves(rng, lines, last)
        place = last[actor][0] if rng.random() < 0.5 else rng.choice(PLACES)
        answer = "yes" if place == last[actor][0] else "no"
        lines.append((f"Is {actor} in the {place}? ", answer, [last[actor][1]]))
    return lines


def _lists(rng: random.Random, n_questions: int) -> list[tuple[str, str | None, list[int]]]:
    """Task 8 style: pick up / drop; `What is X carrying?` -> `apple,milk` or `nothing`."""
    lines: list[tuple[str, str | None, list[int]]] = []
    held: dict[str, list[tuple[str, int]]] = {a: [] for a in ACTORS[:2]}
    dropped: dict[str, int] = {}
    for _ in range(n_questions):
        for _ in range(2):
            free = [o for o in OBJECTS if all(o != h for hs in held.values() for h, _ in hs)]
            actor = rng.choice(sorted(held) if free else [a for a in sorted(held) if held[a]])
            if held[actor] and (not free or rng.random() < 0.4):
                obj, _ = held[actor].pop(rng.randrange(len(held[actor])))
                lines.append((f"{actor} dropped the {obj}.", None, []))
                dropped[actor] = len(lines)
            else:
                obj = rng.choice(free)
                lines.append((f"{actor} picked up the {obj}.", None, []))
                held[actor].append((obj, len(lines)))
        actor = rng.choice(sorted(held))
        if held[actor]:
            answer = ",".join(o for o, _ in held[actor])
            support = [i for _, i in held[actor]]
        else:
            answer, support = "nothing", [dropped[actor]] if actor in dropped else []
        lines.append((f"What is {actor} carrying? ", answer, support))
    return lines


def _path(rng: random.Random, n_questions: int) -> list[tuple[str, str | None, list[int]]]:
    """Task 19 style: two relations chain into a path answer such as `n,w`."""
    lines: list[tuple[str, str | None, list[int]]] = []
    for _ in range(n_questions):
        a, b, c = rng.sample(PLACES, 3)
        d1, d2 = rng.choice(sorted(DIRECTIONS)), rng.choice(sorted(DIRECTIONS))
        lines.append((f"The {b} is {d1} of the {a}.", None, []))
        first = len(lines)
        lines.append((f"The {c} is {d2} of the {b}.", None, []))
        lines.append((f"How do you go from the {a} to the {c}?", f"{DIRECTIONS[d1]},{DIRECTIONS[d2]}",
                      [first, first + 1]))
    return lines


GENERATORS: dict[str, Story] = {"where": _where_is, "yesno": _yes_no, "lists": _lists, "path": _path}
#: The generator each task id gets by default (tasks 6, 8, 19 keep their own answer style).
TASK_KIND = {t: "where" for t in TASK_NAMES} | {6: "yesno", 8: "lists", 19: "path", 2: "lists", 9: "yesno"}


def story_text(lines: Iterable[tuple[str, str | None, list[int]]]) -> str:
    """Number the lines from 1 and lay out questions as `<q>\\t<answer>\\t<ids>`."""
    out = []
    for i, (text, answer, support) in enumerate(lines, start=1):
        if answer is None:
            out.append(f"{i} {text}")
        else:
            out.append(f"{i} {text}\t{answer}\t{' '.join(map(str, support))}")
    return "\n".join(out) + "\n"


def task_text(kind: str, n_stories: int, seed: int, questions: tuple[int, int] = (1, 3)) -> str:
    rng = random.Random(seed)
    return "".join(story_text(GENERATORS[kind](rng, rng.randint(*questions))) for _ in range(n_stories))


def write_release(
    root: Path,
    variant: str = "en",
    tasks: Iterable[int] = TASK_NAMES,
    n_stories: int = 12,
    n_test_stories: int = 6,
    seed: int = 0,
    kinds: dict[int, str] | None = None,
    questions: tuple[int, int] = (1, 3),
) -> Path:
    """Write a generated release under `root`; returns the variant folder."""
    folder = Path(root) / RELEASE / variant
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {**TASK_KIND, **(kinds or {})}
    valid_layout = variant.startswith("en-valid")
    for task in tasks:
        kind = kinds[task]
        texts = {
            "train": task_text(kind, n_stories, seed * 1000 + task, questions),
            "test": task_text(kind, n_test_stories, seed * 1000 + task + 500, questions),
        }
        if valid_layout:
            texts["valid"] = task_text(kind, max(2, n_stories // 5), seed * 1000 + task + 900, questions)
        for split, text in texts.items():
            name = f"qa{task}_{split}.txt" if valid_layout else f"qa{task}_{TASK_NAMES[task]}_{split}.txt"
            (folder / name).write_text(text, encoding="utf-8")
    return folder
