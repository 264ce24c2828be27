"""What a corpus is made of: SFT examples, pre-training documents, and the held-out rule.

The held-out split hashes each item's `key`, not the seed: for generated tasks the key is the task
without its wording (so two phrasings of "100 - 8" never straddle the split), for WordNet the
synset (so a held-out definition is also absent from the pre-training glosses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


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
    """What one packaged source's reader returns."""

    documents: list[Document] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)


def in_heldout(key: str, fraction: float) -> bool:
    """Stable split: the same key is held out under every seed and every corpus size."""
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return h / 2 ** 64 < fraction
