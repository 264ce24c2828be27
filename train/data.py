"""Datasets and collators: token chunks for pre-training, prompt/response pairs for SFT.

SFT examples come from JSONL in chat format (`{"messages": [...]}`, the last message being the
assistant's answer) or `{"prompt", "response"}`, or from a Hugging Face dataset with the same
columns through the `datasets` library: `hf:owner/name` or `hf:owner/name:split` (online, e.g. a
tulu-style SFT mixture), or `hf:/local/dataset/dir`. A malformed line is reported with its file and
line number; over-long examples are truncated (pre-training) or skipped (SFT) and counted.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mdlm_viz.chat import prompt_ids, response_ids
from mdlm_viz.ctc import DEFAULT_COLLAPSE

from .objectives import insert_slack


class DataError(ValueError):
    """Bad training data; the message names the file and line."""


HF_PREFIX = "hf:"


def read_hf_dataset(spec: str) -> list[dict]:
    """Records of `hf:NAME[:SPLIT]` loaded with `datasets` (split defaults to train)."""
    name, _, split = spec[len(HF_PREFIX):].partition(":")
    try:
        import datasets
    except ImportError as err:
        raise DataError(f"{spec}: reading Hugging Face datasets needs `pip install datasets`") from err
    try:
        rows = datasets.load_dataset(name, split=split or "train")
    except Exception as err:  # offline, unknown name, missing split...: say which and why
        raise DataError(f"{spec}: could not load the dataset ({type(err).__name__}: {err}). Offline "
                        "(HF_HUB_OFFLINE=1) only cached or local datasets load.") from err
    return [dict(row, _where=f"{spec}[{i}]") for i, row in enumerate(rows)]


def read_records(path: str | Path) -> list[dict]:
    return read_hf_dataset(str(path)) if str(path).startswith(HF_PREFIX) else read_jsonl(path)


def read_jsonl(path: str | Path) -> list[dict]:
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file; build a corpus with `python -m train corpus --out DIR` "
                        "or pass JSONL files with 'messages' or 'prompt'/'response' records")
    records = []
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    for n, raw in enumerate(raw_lines, 1):
        if b"\x00" in raw:
            raise DataError(f"{path}:{n}: holds NUL bytes, so it looks like a binary file, not JSONL (one JSON "
                            "object per line)")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}:{n}: not UTF-8 text (byte {raw[err.start]:#04x}); is it a binary file? JSONL "
                            "has one JSON object per line") from None
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg}); fix or remove the line") from err
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
        rec["_where"] = f"{path}:{n}"
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no records (the file is empty); JSONL has one JSON object per line")
    return records


def split_chat(rec: dict) -> tuple[list[dict], str]:
    """(prompt messages, response text) from a chat or prompt/response record."""
    where = rec.get("_where", "record")
    if "messages" in rec:
        msgs = rec["messages"]
        if not (isinstance(msgs, list) and msgs and all(isinstance(m, dict) and "role" in m and "content" in m
                                                         for m in msgs)):
            raise DataError(f"{where}: 'messages' must be a list of {{'role', 'content'}} objects")
        if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
            raise DataError(f"{where}: the last message must be the assistant's answer, after a prompt")
        return msgs[:-1], msgs[-1]["content"]
    if "prompt" in rec and "response" in rec:
        return [{"role": "user", "content": rec["prompt"]}], rec["response"]
    raise DataError(f"{where}: expected 'messages' or 'prompt' + 'response' keys, got {sorted(rec)}")


@dataclass
class SFTExample:
    prompt: list[int]
    response: list[int]  # ends with EOS


@dataclass
class SFTData:
    examples: list[SFTExample]
    skipped_too_long: int = 0
    sources: list[str] = field(default_factory=list)


class GeneratedSFT(torch.utils.data.Dataset):
    """An unlimited stream of generated tasks as a map-style dataset of `length` items: item i is
    `corpus.stream_example(i, seed)` tokenised through the chat template, a pure function of
    (seed, i), so the Trainer's shuffling, checkpoints and resume work as with a file, and no
    example is ever repeated in practice. Held-out keys are never drawn (see `stream_example`).

    `curriculum` > 0: list lengths grow from the shortest to the full range over the first
    `curriculum` fraction of the stream (item i's scale is i / (curriculum * length)). The stream
    is then read in order (`sequential`), so the scale follows the training step; a generated
    stream is already random, so nothing is lost by not shuffling it."""

    sequential = True  # read by DiffusionTrainer: item i is drawn at step i // batch

    def __init__(self, tokenizer, length: int, families=None, seed: int = 0, heldout_fraction: float = 0.05,
                 curriculum: float = 0.0, focus=(), focus_fraction: float = 0.0):
        from . import corpus

        if not 0.0 <= curriculum <= 1.0:
            raise DataError(f"curriculum {curriculum}: give the fraction of training over which lists grow, in 0..1")
        self.tokenizer, self.length, self.seed, self.heldout_fraction = tokenizer, length, seed, heldout_fraction
        self.curriculum = curriculum
        # The first `focus_fraction` of the stream draws only the `focus` families (copy and reverse:
        # aligning answer positions with prompt positions forms faster without the others).
        self.focus, self.focus_fraction = tuple(focus), focus_fraction
        if focus_fraction and not self.focus:
            raise DataError("focus_fraction needs focus families")
        self.families = tuple(families or corpus.FAMILIES)
        unknown = (set(self.families) | set(focus)) - set(corpus.TASKS)
        if unknown:
            raise DataError(f"unknown task families {sorted(unknown)}; known: {', '.join(corpus.TASKS)}")
        self._example = corpus.stream_example

    def __len__(self) -> int:
        return self.length

    def scale(self, i: int) -> float:
        return min(1.0, i / (self.curriculum * self.length)) if self.curriculum > 0 else 1.0

    def __getitem__(self, i: int) -> SFTExample:
        families = self.focus if i < self.focus_fraction * self.length else self.families
        ex = self._example(int(i), self.seed, families, self.heldout_fraction, self.scale(int(i)))
        return SFTExample(prompt_ids(self.tokenizer, ex.prompt), response_ids(self.tokenizer, ex.response))


def slack_length(n: int, s_max: float, repeats: int = 0) -> int:
    """Longest a response of n tokens can get after slack insertion (repeats: forced slacks)."""
    return n + repeats + round(s_max * n)


def load_sft(paths, tokenizer, max_length: int, s_max: float = 0.0, collapse: str = DEFAULT_COLLAPSE) -> SFTData:
    """Tokenised examples; those that could exceed max_length (after slack insertion when s_max > 0)
    are skipped and counted."""
    data = SFTData([], sources=[str(p) for p in paths])
    for path in paths:
        for rec in read_records(path):
            messages, answer = split_chat(rec)
            prompt, response = prompt_ids(tokenizer, messages), response_ids(tokenizer, answer)
            repeats = sum(a == b for a, b in zip(response, response[1:])) if collapse == "standard" else 0
            if len(prompt) + slack_length(len(response), s_max, repeats) > max_length:
                data.skipped_too_long += 1
                continue
            data.examples.append(SFTExample(list(prompt), response))
    if not data.examples:
        raise DataError(f"no usable SFT example in {data.sources} (skipped as too long: {data.skipped_too_long})")
    return data


def load_pretrain_chunks(paths, tokenizer, seq_len: int) -> list[list[int]]:
    """Texts joined by EOS and cut into chunks of seq_len tokens (the last partial chunk dropped)."""
    stream: list[int] = []
    for path in paths:
        for rec in read_jsonl(path):
            if "text" not in rec:
                raise DataError(f"{rec['_where']}: a pre-training record needs a 'text' key")
            stream += tokenizer(rec["text"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    chunks = [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
    if not chunks:
        raise DataError(f"pre-training text in {list(map(str, paths))} is shorter than one chunk of {seq_len} tokens")
    return chunks


def _batch_rng(seed: int, rows) -> random.Random:
    """A generator seeded by the batch's own content: no state to save, so a resumed run augments
    its batches exactly as an uninterrupted one (a batch seen again in a later epoch gets the same
    draw). Python hashes tuples of ints deterministically."""
    return random.Random(hash((seed, tuple(tuple(r) for r in rows))))


class PretrainCollator:
    """Stacks chunks; 1% of batches are cut to a random shorter length, as in LLaDA.

    With `slack_id` (pre-training with the CTC term, the paper's first open question) each chunk
    is a "response" with an empty prompt: slack-augmented, EOS-padded, with the CTC fields."""

    def __init__(self, short_fraction: float = 0.01, seed: int = 0, eos_id: int | None = None,
                 slack_id: int | None = None, s_max: float = 0.5, collapse: str = DEFAULT_COLLAPSE):
        self.short_fraction, self.seed = short_fraction, seed
        self.ctc = SFTCollator(eos_id, slack_id, s_max, collapse, seed) if slack_id is not None else None

    def __call__(self, chunks: list[list[int]]) -> dict:
        rng = _batch_rng(self.seed, chunks)
        if rng.random() < self.short_fraction:
            cut = rng.randint(1, len(chunks[0]))
            chunks = [c[:cut] for c in chunks]
        if self.ctc is not None:
            return self.ctc([SFTExample([], list(c)) for c in chunks])
        return {"input_ids": torch.tensor(chunks)}


class SFTCollator:
    """Pads responses with EOS to the batch length (padding counts as response, as in LLaDA).

    With `slack_id`, responses are first slack-augmented (ratio ~ U(0, s_max); with `slack_share`
    below 1, only that share of them, the rest left clean) and the batch also carries what the CTC
    term needs: the original responses and where the augmented ones lie."""

    def __init__(self, eos_id: int, slack_id: int | None = None, s_max: float = 0.5, collapse: str = DEFAULT_COLLAPSE,
                 seed: int = 0, placement: str = "uniform", answer_length: int = 0, slack_share: float = 1.0):
        self.eos_id, self.slack_id, self.s_max, self.collapse, self.seed = eos_id, slack_id, s_max, collapse, seed
        self.placement, self.slack_share = placement, slack_share
        # Every row's answer region (response + EOS padding) at least this long: the canvas the
        # sampler decodes. A model trained only on batch-length padding has rarely seen an answer
        # followed by a long EOS tail, and decodes a 48-token canvas far worse than a 16-token one.
        self.answer_length = answer_length

    def __call__(self, examples: list[SFTExample]) -> dict:
        responses = [ex.response for ex in examples]
        if self.slack_id is not None:
            rng = _batch_rng(self.seed, [ex.prompt + ex.response for ex in examples])
            # The share is drawn only below 1, so runs with every response slacked keep their draws.
            slacked = [self.slack_share >= 1.0 or rng.random() < self.slack_share for _ in responses]
            responses = [insert_slack(r, self.slack_id, rng.uniform(0, self.s_max), rng, self.collapse,
                                      self.placement) if s else r for r, s in zip(responses, slacked)]
        L = max(max(len(ex.prompt) + len(r) for ex, r in zip(examples, responses)),
                max(len(ex.prompt) for ex in examples) + self.answer_length)
        rows, prompt_len, answer_len = [], [], []
        for ex, r in zip(examples, responses):
            row = ex.prompt + r
            rows.append(row + [self.eos_id] * (L - len(row)))
            prompt_len.append(len(ex.prompt))
            answer_len.append(L - len(ex.prompt))
        batch = {"input_ids": torch.tensor(rows), "prompt_lengths": torch.tensor(prompt_len),
                 "answer_lengths": torch.tensor(answer_len),  # with the EOS padding
                 "response_lengths": torch.tensor([len(r) for r in responses])}  # up to the answer's own EOS
        if self.slack_id is not None:
            U = max(len(ex.response) for ex in examples)
            batch["ctc_targets"] = torch.tensor([ex.response + [0] * (U - len(ex.response)) for ex in examples])
            batch["ctc_target_lengths"] = torch.tensor([len(ex.response) for ex in examples])
            batch["ctc_region_lengths"] = torch.tensor([len(r) for r in responses])
        return batch
