"""Checkpoint references: the one syntax of the loader, the CLIs and the app.

A reference is a local directory (as given, or relative to a base directory such as the
repository) or a hub id `owner/name`; `hub:owner/name` forces the hub where a local folder could
match. `NAME=REF` pairs name the checkpoints the app serves and the evaluations compare. Nothing
here loads or downloads anything, so checking references costs no imports of the model code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

HUB_PREFIX = "hub:"  # optional: `hub:owner/name` is a hub id even where a local folder could match


def parse_named_refs(specs: str | Sequence[str], flag: str = "--models") -> dict[str, str]:
    """`NAME=REF` pairs (a list, or one comma-separated string as in an environment variable) ->
    {name: checkpoint reference}; the app, `train demo-check` and `train robustness` read them here."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, ref = str(spec).partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise ValueError(f"{flag} takes NAME=PATH pairs (PATH: a checkpoint directory or a hub id owner/name), "
                             f"got {spec!r}")
        if name.strip() in out:
            raise ValueError(f"{flag} names {name.strip()!r} twice")
        out[name.strip()] = ref.strip()
    return out


def locate_checkpoint(ref: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path | str:
    """Where a checkpoint reference points, without loading or downloading anything: a local
    directory (as given, else relative to `base_dir`), or a hub id `owner/name` (`hub:owner/name`
    forces the hub). The one syntax of the loader, the CLIs and the app."""
    name = str(ref)
    if name.startswith(HUB_PREFIX):
        name = name[len(HUB_PREFIX):]
        if name.count("/") != 1 or name.startswith((".", "/", "~")):
            raise FileNotFoundError(f"{str(ref)!r}: a hub id has the form hub:owner/name")
        return name
    for candidate in (Path(name).expanduser(), *([Path(base_dir) / name] if base_dir else [])):
        if candidate.is_dir():
            return candidate
    # owner/name is a hub id, unless `owner` is a local folder (assets/ce-typo is a missing directory).
    roots = [Path("."), *([Path(base_dir)] if base_dir else [])]
    parent_is_local = any((root / name.split("/")[0]).is_dir() for root in roots)
    if Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") != 1 or parent_is_local:
        raise FileNotFoundError(
            f"checkpoint directory {name!r} is missing (and it is not a hub repo id of the form owner/name)"
        )
    return name
