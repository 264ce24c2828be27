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

# The package, module by module (this file only names what callers use):
#   records   Example, Document, SourceData, in_heldout (the split rule)
#   fetch     the packages each source needs: locate them, fetch them into the cache
#   tasks     the task generator (the families, TASKS, stream_example, generate_tasks)
#   stories   the story grammar behind the `story` family, and its fluency judge
#   readers   one reader per packaged source
#   build     build_corpus, the manifest, and the `corpus` stage (CorpusConfig, run)
from .build import CorpusConfig, Manifest, add_arguments, build_corpus, run
from .fetch import ALL_SOURCES, default_cache_dir, fetch_sources
from .records import Document, Example, in_heldout
from .tasks import EXACT_FAMILIES, FAMILIES, TASKS, generate_tasks, has_adjacent_repeat, number_to_words, stream_example

__all__ = [
    "ALL_SOURCES", "EXACT_FAMILIES", "FAMILIES", "TASKS", "CorpusConfig", "Document", "Example", "Manifest",
    "add_arguments", "build_corpus", "default_cache_dir", "fetch_sources", "generate_tasks", "has_adjacent_repeat",
    "in_heldout", "number_to_words", "run", "stream_example",
]
