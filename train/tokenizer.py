"""A small byte-level BPE tokenizer with LLaDA-8B-Instruct's special tokens and chat format.

GPT-2's 50k vocabulary would dwarf a model of a few million parameters, so we train a few
thousand entries on our own corpus. Each digit is its own token before BPE, together with the
space before it if there is one: numbers are spelled digit by digit, so "100" is three tokens and
its repeated "0 0" is visible to the CTC collapse map (the failure case this project studies),
and "1 2 3" is three tokens ("1", " 2", " 3"), not five: a separator token between items makes
copying them by position many times slower to learn (docs/results.md).

Special tokens take ids 0..6 in the order of SPECIAL_TOKENS (tests and configs rely on it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .config import StageConfig

BOS, EOS, EOT, START_HEADER, END_HEADER, MASK, SLACK = SPECIAL_TOKENS = (
    "<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|mdm_mask|>", "<slack>",
)

# LLaDA-8B-Instruct's format (Llama-3 headers): BOS once, then per message
# <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>; the generation prompt opens
# the assistant's header and leaves the answer to the model.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# Corpus files the tokenizer learns from when given a corpus directory (held-out files never).
TRAIN_FILES = ("pretrain.jsonl", "sft_train.jsonl", "pretrain.txt")


def _record_texts(record: dict) -> Iterator[str]:
    if "text" in record:
        yield record["text"]
    for message in record.get("messages", ()):
        yield message["content"]


def corpus_texts(corpus: str | Path | Iterable[str | Path]) -> Iterator[str]:
    """Texts of a corpus directory (its training files) or of given .jsonl / .txt files."""
    if isinstance(corpus, (str, Path)) and Path(corpus).is_dir():
        files = [Path(corpus) / f for f in TRAIN_FILES if (Path(corpus) / f).is_file()]
        if not files:
            raise FileNotFoundError(f"corpus_texts: none of {TRAIN_FILES} in {corpus}")
    else:
        files = [Path(corpus)] if isinstance(corpus, (str, Path)) else [Path(f) for f in corpus]
    for path in files:
        with open(path, encoding="utf-8") as f:
            if path.suffix == ".jsonl":
                for line in f:
                    if line.strip():
                        yield from _record_texts(json.loads(line))
            else:
                yield from (line for line in f if line.strip())


def new_backend() -> Tokenizer:
    """An untrained byte-level BPE: each digit (with a space before it) isolated first, then GPT-2's
    byte-level split."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r" ?[0-9]"), behavior="isolated"),  # one digit (and its space) a piece
        pre_tokenizers.ByteLevel(add_prefix_space=False),  # no added space: decode(encode(s)) == s
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """The transformers tokenizer: special tokens registered, chat template set, no auto-BOS."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS, eos_token=EOS, pad_token=EOS, mask_token=MASK,
        additional_special_tokens=[EOT, START_HEADER, END_HEADER, SLACK],
        clean_up_tokenization_spaces=False,  # it would turn "a ." into "a." and break round trips
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def train_tokenizer(corpus, out_dir=None, *, vocab_size: int = 4096, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train on a corpus directory (or files), save to `out_dir` with `save_pretrained` if given."""
    backend = new_backend()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # added first, so they get ids 0..6 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever unknown
        show_progress=False,
    )
    backend.train_from_iterator(corpus_texts(corpus), trainer)
    tok = wrap(backend)
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    if ids != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError(f"train_tokenizer: special tokens got ids {ids}, expected 0..{len(SPECIAL_TOKENS) - 1}")
    if out_dir is not None:
        tok.save_pretrained(out_dir)
    return tok


def special_token_ids(tok) -> dict[str, int]:
    """Ids the model config and the sampler need."""
    ids = tok.convert_tokens_to_ids
    return {"bos": ids(BOS), "eos": ids(EOS), "pad": ids(tok.pad_token or EOS), "mask": ids(MASK),
            "eot": ids(EOT), "slack": ids(SLACK)}


def config_token_ids(tok) -> dict[str, int]:
    """special_token_ids under LLaDAConfig's argument names: LLaDAConfig(**config_token_ids(tok))."""
    return {f"{name}_token_id": i for name, i in special_token_ids(tok).items()}


# The stage: `python -m train tokenizer ...` (wired in train/__main__.py), or `run(TokenizerConfig(...))`


@dataclass
class TokenizerConfig(StageConfig):
    corpus: list[str] = field(default_factory=list)  # a corpus directory, or .jsonl/.txt files (required)
    out: str = ""  # output directory (required on the command line)
    vocab_size: int = 4096
    min_frequency: int = 2


def add_arguments(parser) -> None:
    TokenizerConfig.set_cli_defaults(parser)
    parser.add_argument("--corpus", required=True, nargs="+", help="corpus directory, or .jsonl/.txt files")
    parser.add_argument("--out", required=True, help="output directory (save_pretrained)")
    parser.add_argument("--vocab-size", type=int)
    parser.add_argument("--min-frequency", type=int)


def run(cfg: TokenizerConfig) -> int:
    corpus = cfg.corpus[0] if len(cfg.corpus) == 1 else cfg.corpus
    t0 = time.perf_counter()
    tok = train_tokenizer(corpus, cfg.out, vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency)
    print(f"tokenizer: {len(tok)} entries in {time.perf_counter() - t0:.1f} s -> {cfg.out}; "
          f"special ids {special_token_ids(tok)}")
    return 0
