"""python -m train: data, tokenizers and training for mdlm-viz's LLaDA-architecture models.

Each sub-command explains itself: `python -m train COMMAND --help`.
"""

import argparse
import sys

from . import corpus, tokenizer

# name -> (module with add_arguments/run, one-line help)
COMMANDS = {
    "corpus": (corpus, "build pre-training text and prompt/response SFT sets from offline sources + a task generator"),
    "tokenizer": (tokenizer, "train a small byte-level BPE tokenizer with LLaDA's special tokens and a chat template"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
