"""What every stage config shares: how the CLI fills one, and how one travels as JSON.

Each `python -m train` stage is a function of one dataclass (`CorpusConfig`, `PretrainConfig`,
`SFTConfig`, ...; each lives beside its stage). The command line is only the edge: a flag is a
field (`--batch-size` -> `batch_size`), the parser takes its defaults from the dataclass, so every
default is written once, and the parsed flags become the config. The recipe builds configs
directly and calls the stage functions.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from typing import Self


@dataclass
class StageConfig:
    """Base of the stage configs. Every field has a default (a required flag's is a placeholder
    the command line always replaces), so `Config()` is the table of defaults."""

    @classmethod
    def set_cli_defaults(cls, parser: argparse.ArgumentParser) -> None:
        """Make the config's defaults the parser's. Arguments added later without a `default=`
        take theirs from here (argparse's parser-level defaults)."""
        parser.set_defaults(**asdict(cls()))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        """The config of a parsed command line (its parser went through `set_cli_defaults`)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls(**json.loads(text))

    def describe(self) -> str:
        """`Name(field=value, ...)` with only the fields set away from their defaults: a log line."""
        default = type(self)()
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)]
        return f"{type(self).__name__}({', '.join(changed)})"
