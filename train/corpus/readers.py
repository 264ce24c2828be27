"""Readers of the packaged sources. Each takes its packages' roots and returns documents + examples.

WordNet definitions, Austen's novels as runs of paragraphs, chatterbot's first Q/A turns, tame
fortunes (Q:/A: riddles become SFT pairs) and bsdgames quiz tables as short questions with exact
answers. Crude entries are dropped: the bundled models should be safe to show in a classroom.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .records import Document, Example, SourceData


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
