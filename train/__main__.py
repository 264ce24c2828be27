"""python -m train: data, tokenizers and training for mdlm-viz's LLaDA-architecture models.

Each sub-command explains itself: `python -m train COMMAND --help`.
"""

import argparse
import sys

from . import corpus, demo_check, evaluate, recipe, robustness, run, tokenizer

# name -> (add_arguments, config type, stage function, description, one-line help). Each stage is a
# function of its config; the command line only parses its flags into one.
COMMANDS = {
    "corpus": (corpus.add_arguments, corpus.CorpusConfig, corpus.run, corpus.__doc__,
               "build pre-training text and prompt/response SFT sets from offline sources + a task generator"),
    "tokenizer": (tokenizer.add_arguments, tokenizer.TokenizerConfig, tokenizer.run, tokenizer.__doc__,
                  "train a small byte-level BPE tokenizer with LLaDA's special tokens and a chat template"),
    "pretrain": (run.add_pretrain_arguments, run.PretrainConfig, run.pretrain, run.__doc__,
                 "masked-diffusion pre-training of a small LLaDA-architecture model from scratch"),
    "sft": (run.add_sft_arguments, run.SFTConfig, run.sft, run.__doc__,
            "SFT of a checkpoint with CE, or CE + lambda * CTC with <slack> (--objective ctc)"),
    "eval": (evaluate.add_arguments, evaluate.EvalConfig, evaluate.run, evaluate.__doc__,
             "held-out loss and exact-answer task accuracy of a checkpoint"),
    "robustness": (robustness.add_arguments, robustness.RobustnessConfig, robustness.run, robustness.__doc__,
                   "the shift-intervention sweep: win rate vs strength per checkpoint (the paper's Figure 4)"),
    "demo-check": (demo_check.add_arguments, demo_check.DemoCheckConfig, demo_check.run, demo_check.__doc__,
                   "does one shifted token break CE's answer while CTC's <slack> absorbs it? (per prompt, JSON)"),
    "recipe": (recipe.add_arguments, recipe.RecipeConfig, recipe.run, recipe.__doc__,
               "every embedded checkpoint in assets/ from scratch: corpus ... export, evaluation"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, config_type, stage, description, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(p)
        p.set_defaults(_config_type=config_type, _stage=stage)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._stage(args._config_type.from_args(args)) or 0)


def cli() -> int:
    """main() for people: bad input ends with one clear line instead of a traceback."""
    from .data import DataError

    try:
        return main()
    except (DataError, FileNotFoundError, FloatingPointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
