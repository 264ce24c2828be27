"""Two-sentence stories from a small grammar: open-ended English a few-million-parameter model can learn.

Packaged prose (Austen, WordNet glosses) is far beyond a model of this size, so its open answers
never read as English. A controlled vocabulary and grammar give text the model can become fluent
in, and an honest fluency judge: `accepts(text)` says whether the grammar can produce `text`
(every sentence one of the patterns below, every slot filled from its word list).

    prompt:   Tell me a story about Tom the cat.
    response: Tom the cat lived in a small house. One day Tom found a red ball.
"""

from __future__ import annotations

import random
import re

NAMES = ("Tom", "Mia", "Sam", "Lily", "Max", "Anna", "Ben", "Lucy", "Leo", "Emma", "Jack", "Rosa",
         "Finn", "Ella", "Noah", "Ruby")
ANIMALS = ("cat", "dog", "fox", "bird", "frog", "duck", "bear", "rabbit", "mouse", "horse", "owl", "pig")
ADJECTIVES = ("small", "big", "happy", "brave", "kind", "quiet", "little", "old")
COLOURS = ("red", "blue", "green", "yellow", "white", "black")
THINGS = ("ball", "hat", "box", "kite", "cake", "book", "boat", "key", "shoe", "cup")
PLACES = ("house", "forest", "garden", "farm", "park", "field", "town", "barn")
FEELINGS = ("happy", "sad", "tired", "hungry", "proud", "sleepy")

# Sentence patterns over the slots {name} {animal} {adj} {colour} {thing} {place} {feeling};
# the first sentence introduces the character, the second says what happened.
OPENINGS = (
    "{name} the {animal} lived in a {adj} {place}.",
    "Once there was a {adj} {animal} called {name}.",
    "{name} was a {adj} {animal} who liked the {place}.",
)
EVENTS = (
    "One day {name} found a {colour} {thing}.",
    "One day {name} lost a {colour} {thing} in the {place}.",
    "{name} played with a {colour} {thing} and was {feeling}.",
    "After a long day {name} was very {feeling}.",
)
PROMPTS = ("Tell me a story about {name} the {animal}.", "Write a short story about {name} the {animal}.")

_SLOTS = {"name": NAMES, "animal": ANIMALS, "adj": ADJECTIVES, "colour": COLOURS, "thing": THINGS,
          "place": PLACES, "feeling": FEELINGS}


def _fill(pattern: str, rng: random.Random, fixed: dict) -> str:
    values = {k: fixed.get(k) or rng.choice(v) for k, v in _SLOTS.items()}
    return pattern.format(**values)


def story(rng: random.Random) -> tuple[str, str, dict]:
    """(prompt, response, meta): a character from the prompt, an opening and an event about it."""
    name, animal = rng.choice(NAMES), rng.choice(ANIMALS)
    fixed = {"name": name, "animal": animal}
    text = _fill(rng.choice(OPENINGS), rng, fixed) + " " + _fill(rng.choice(EVENTS), rng, fixed)
    return rng.choice(PROMPTS).format(name=name, animal=animal), text, {"name": name, "animal": animal}


_group = iter(range(10**6))  # regex group names must be unique across the whole grammar


def _regex(pattern: str) -> str:
    out = []
    for part in re.split(r"(\{\w+\})", pattern):
        if part.startswith("{"):
            key = part[1:-1]
            out.append(f"(?P<{key}_{next(_group)}>" + "|".join(map(re.escape, _SLOTS[key])) + ")")
        else:
            out.append(re.escape(part))
    return "".join(out)


_GRAMMAR = re.compile("(?:" + "|".join(_regex(p) for p in OPENINGS) + ") (?:" +
                      "|".join(_regex(p) for p in EVENTS) + ")")


def accepts(text: str, name: str | None = None, animal: str | None = None) -> bool:
    """Whether the grammar produces `text`; with name/animal, also that the story is about them
    (every {name} and {animal} slot holds the prompt's character)."""
    m = _GRAMMAR.fullmatch(text.strip())
    if m is None:
        return False
    for key, value in m.groupdict().items():
        if value is None:
            continue
        slot = key.rsplit("_", 1)[0]
        if (slot == "name" and name and value != name) or (slot == "animal" and animal and value != animal):
            return False
    return True
