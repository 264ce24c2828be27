"""The task generator: short instructions with exact answers, and two-sentence stories.

Families: copy, reverse, sort, count, arithmetic, spell a number (exact answers), and story
(open-ended, judged by its grammar in `stories.py`). Numbers with repeated digits and trailing
zeros ("100", "1100", "33") are over-sampled: the case where CTC's standard collapse map breaks
surface forms ("100" -> "10").
"""

from __future__ import annotations

import json
import random
import re
from typing import Callable, Iterable

from . import stories
from .records import Example, in_heldout

EXACT_FAMILIES = ("copy", "reverse", "sort", "count", "arithmetic", "spell")  # answers judged by exact match
FAMILIES = EXACT_FAMILIES + ("story",)  # story: open-ended, judged by its grammar (stories.py)


WORDS = (
    "apple", "bird", "boat", "book", "box", "bread", "cake", "car", "cat", "chair", "cloud", "coat",
    "cow", "cup", "desk", "dog", "door", "duck", "egg", "fish", "flag", "frog", "girl", "goat",
    "hat", "hill", "horse", "house", "key", "kite", "lamp", "leaf", "lion", "milk", "moon", "mouse",
    "nest", "pen", "pig", "plum", "rain", "ring", "road", "rock", "rose", "sheep", "ship", "shoe",
    "snow", "sock", "star", "stone", "sun", "table", "tree", "wall", "water", "wind", "wolf", "yard",
    "banana", "letter", "coffee", "balloon", "butter", "kitten", "spoon", "summer", "tomato",
)

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000, American style: 1100 -> 'one thousand one hundred'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_to_words: {n} out of range")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{_ONES[n // 100]} hundred" + (f" {number_to_words(n % 100)}" if n % 100 else "")
    return f"{number_to_words(n // 1000)} thousand" + (f" {number_to_words(n % 1000)}" if n % 1000 else "")


def collapse_prone_number(rng: random.Random, max_digits: int = 4) -> int:
    """A number whose digits repeat side by side: 100, 2000, 33, 1100, 1224."""
    kind = rng.choice(("trailing_zeros", "repdigit", "double_then_zeros", "doubled_digit"))
    if kind == "trailing_zeros":  # 100, 2000, 4500
        lead = rng.randint(1, 9) if max_digits < 3 or rng.random() < 0.7 else rng.randint(10, 99)
        zeros = rng.randint(2 if lead < 10 else 1, max_digits - len(str(lead)))
        return lead * 10 ** max(zeros, 1)
    if kind == "repdigit":  # 33, 777
        return int(str(rng.randint(1, 9)) * rng.randint(2, max_digits))
    if kind == "double_then_zeros":  # 1100, 220
        return int(str(rng.randint(1, 9)) * 2 + "0" * rng.randint(1, max_digits - 2))
    digits = [str(rng.randint(1, 9))] + [str(rng.randint(0, 9)) for _ in range(rng.randint(1, max_digits - 1))]
    i = rng.randrange(len(digits) - 1)
    digits[i + 1] = digits[i]  # force one adjacent repeat: 1224
    return int("".join(digits))


def sample_number(rng: random.Random, max_digits: int = 4, p_collapse: float = 0.5) -> int:
    if rng.random() < p_collapse:
        return collapse_prone_number(rng, max_digits)
    return rng.randint(0, 10 ** rng.randint(1, max_digits) - 1)


def has_adjacent_repeat(text: str) -> bool:
    """Whether the text holds a pair that a repeat-merging collapse would destroy: adjacent equal
    digits ('100') or adjacent equal whitespace-separated items ('dog dog')."""
    if re.search(r"(\d)\1", text):
        return True
    items = text.split()
    return any(a == b for a, b in zip(items, items[1:]))


def _example(family: str, template: str, answer: str, meta: dict, **fields) -> Example:
    prompt = template.format(**fields)
    meta = dict(meta, repeats=has_adjacent_repeat(answer))
    key = f"{family}:" + json.dumps({k: v for k, v in meta.items() if k != "repeats"}, sort_keys=True)
    return Example(prompt, answer, family, "generator", key, answer=answer, meta=meta)


def upto(lo: int, hi: int, scale: float) -> int:
    """The largest list length a curriculum allows: hi at scale 1, lo at scale 0. At scale 1 the
    generators draw exactly what they drew before curricula existed (the corpus is unchanged)."""
    return lo + round(min(max(scale, 0.0), 1.0) * (hi - lo))


def _word_list(rng: random.Random, lo: int = 3, hi: int = 8, scale: float = 1.0) -> list[str]:
    items = [rng.choice(WORDS) for _ in range(rng.randint(lo, upto(lo, hi - 1, scale)))]
    if rng.random() < 0.3:  # an adjacent duplicate, as "dog dog" merges under standard collapse
        i = rng.randrange(len(items))
        items.insert(i, items[i])
    return items


def _digit_list(rng: random.Random, lo: int = 3, hi: int = 10, scale: float = 1.0) -> list[str]:
    """Single digits, usually with a run of repeats ("1 2 2 4", "7 0 0 0"): the collapse-prone case."""
    digits = [str(rng.randint(0, 9)) for _ in range(rng.randint(lo, upto(lo, hi, scale)))]
    if rng.random() < 0.7:
        i = rng.randrange(len(digits) - 1)
        for j in range(i + 1, min(len(digits), i + 1 + rng.randint(1, 3))):
            digits[j] = digits[i]
    return digits


# Copy and reverse answers run up to ~20 tokens (digits are one token each, words one each), so a
# token moved one place early in a decode has room to cascade through the rest of the answer.
# `scale` (0..1) caps list lengths for a short-to-long curriculum (`stream_example`).
def task_copy(rng: random.Random, scale: float = 1.0) -> Example:
    kind = rng.choice(("numbers", "numbers", "digits", "words"))
    if kind == "numbers":
        items = [str(sample_number(rng, 4, p_collapse=0.7)) for _ in range(rng.randint(1, upto(1, 4, scale)))]
    elif kind == "digits":
        items = _digit_list(rng, scale=scale)
    else:
        items = _word_list(rng, scale=scale)
    text = " ".join(items)
    template = rng.choice(("Copy: {x}", "Repeat exactly: {x}", "Write this again: {x}", "Echo: {x}"))
    return _example("copy", template, text, {"items": items}, x=text)


def task_reverse(rng: random.Random, scale: float = 1.0) -> Example:
    items = _word_list(rng, scale=scale) if rng.random() < 0.5 else _digit_list(rng, scale=scale)
    template = rng.choice(("Reverse: {x}", "Reverse the order: {x}", "Write these in reverse order: {x}",
                           "List backwards: {x}"))
    return _example("reverse", template, " ".join(reversed(items)), {"items": items}, x=" ".join(items))


def task_sort(rng: random.Random, scale: float = 1.0) -> Example:
    nums = [rng.randint(0, 99) if rng.random() < 0.8 else collapse_prone_number(rng, 4)
            for _ in range(rng.randint(3, upto(3, 6, scale)))]
    descending = rng.random() < 0.3
    templates = (("Sort from largest to smallest: {x}", "Put in descending order: {x}") if descending else
                 ("Sort: {x}", "Sort from smallest to largest: {x}", "Put in ascending order: {x}"))
    answer = " ".join(str(n) for n in sorted(nums, reverse=descending))
    return _example("sort", rng.choice(templates), answer, {"items": nums, "descending": descending},
                    x=" ".join(str(n) for n in nums))


def task_count(rng: random.Random, scale: float = 1.0) -> Example:
    kind = rng.choice(("items", "letter", "length"))
    if kind == "items":
        items = [rng.choice(WORDS) for _ in range(rng.randint(1, upto(1, 9, scale)))]
        template = rng.choice(("How many words are there: {x}?", "Count the words: {x}",
                               "How many items are in this list: {x}?"))
        return _example("count", template, str(len(items)), {"kind": kind, "items": items}, x=" ".join(items))
    word = rng.choice(WORDS)
    if kind == "length":
        template = rng.choice(("How many letters are in {w}?", "How many letters does the word {w} have?"))
        return _example("count", template, str(len(word)), {"kind": kind, "word": word}, w=word)
    # Mostly letters that occur, sometimes one that does not (answer 0).
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice("abcdefghijklmnopqrstuvwxyz")
    template = rng.choice(("How many times does the letter {c} appear in {w}?", "Count the letter {c} in {w}."))
    return _example("count", template, str(word.count(letter)), {"kind": kind, "word": word, "letter": letter},
                    c=letter, w=word)


def task_arithmetic(rng: random.Random, scale: float = 1.0) -> Example:
    """Addition and subtraction of numbers below 1000 (no negative answers)."""
    op = rng.choice(("add", "sub"))
    if rng.random() < 0.4:  # build the sum around a collapse-prone answer: 700 + 100 = 800, 55 + 45 = 100
        target = collapse_prone_number(rng, 3)
        b = rng.randint(0, min(99, target)) if rng.random() < 0.7 else collapse_prone_number(rng, 3) % (target + 1)
        a, b = (target - b, b) if op == "add" else (target + b, b)
        if a > 999:
            a, b = target, b % (target + 1)
    else:
        hi = 99 if rng.random() < 0.5 else 999
        a, b = rng.randint(0, hi), rng.randint(0, hi)
        if op == "sub" and b > a:
            a, b = b, a
    templates = (("What is {a} plus {b}?", "{a} + {b} =", "Add {a} and {b}.", "What is the sum of {a} and {b}?")
                 if op == "add" else ("What is {a} minus {b}?", "{a} - {b} =", "Subtract {b} from {a}."))
    answer = str(a + b if op == "add" else a - b)
    return _example("arithmetic", rng.choice(templates), answer, {"op": op, "a": a, "b": b}, a=a, b=b)


def task_spell(rng: random.Random, scale: float = 1.0) -> Example:
    n = sample_number(rng, 4, p_collapse=0.6)
    if rng.random() < 0.35:  # words -> digits: here the collapse-prone digits are in the answer
        template = rng.choice(("Write {w} in digits.", "What number is {w}?"))
        return _example("spell", template, str(n), {"n": n, "to": "digits"}, w=number_to_words(n))
    template = rng.choice(("Write {n} in words.", "Spell out the number {n}.", "How is {n} written in words?"))
    return _example("spell", template, number_to_words(n), {"n": n, "to": "words"}, n=n)


def task_story(rng: random.Random, scale: float = 1.0) -> Example:
    prompt, text, meta = stories.story(rng)
    return Example(prompt, text, "story", "generator", "story:" + json.dumps(meta, sort_keys=True), meta=meta)


TASKS: dict[str, Callable[..., Example]] = {  # (rng, scale=1.0) -> Example
    "copy": task_copy, "reverse": task_reverse, "sort": task_sort,
    "count": task_count, "arithmetic": task_arithmetic, "spell": task_spell, "story": task_story,
}


def stream_example(index: int, seed: int = 0, families: tuple[str, ...] = FAMILIES,
                   heldout_fraction: float = 0.05, scale: float = 1.0) -> Example:
    """Training example number `index` of an unlimited generated stream: a pure function of
    (seed, index, scale), so a resumed run sees exactly what an uninterrupted one does. Families
    take turns; examples whose key falls in the held-out split (the one `build_corpus` writes to
    sft_heldout.jsonl) are never drawn, so training and held-out prompts are disjoint. `scale` < 1
    caps list lengths (a curriculum's early, short lists)."""
    family = families[index % len(families)]
    rng = random.Random(f"{seed}:stream:{index}")
    for _ in range(1000):
        ex = TASKS[family](rng, scale)
        if not in_heldout(ex.key, heldout_fraction):
            return ex
    raise ValueError(f"stream_example: family {family} has no training example outside the held-out split")


def generate_tasks(n: int, seed: int = 0, families: Iterable[str] = FAMILIES) -> list[Example]:
    """`n` distinct-prompt tasks spread evenly over `families`; the same seed gives the same list."""
    families = list(families)
    out = []
    for i, family in enumerate(families):
        want = n // len(families) + (i < n % len(families))
        rng = random.Random(f"{seed}:{family}")  # one stream per family: adding one leaves the others alone
        seen: set[str] = set()
        for _ in range(50 * want + 100):  # small families (word lengths) saturate; stop, not loop forever
            if len(seen) == want:
                break
            ex = TASKS[family](rng)
            if ex.prompt not in seen:
                seen.add(ex.prompt)
                out.append(ex)
    return out
