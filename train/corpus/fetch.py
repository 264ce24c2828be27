"""Where each packaged source's files live: installed on the system, or fetched into a cache.

Text comes from Debian / PyPI packages that ship it (WordNet glosses, Jane Austen's novels,
chatterbot-corpus Q/A, fortunes, bsdgames quiz tables). They are fetched with the ordinary clients
(`apt-get download` + `dpkg -x`, `pip download --no-deps`), never installed, never committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

ALL_SOURCES = ("wordnet", "austen", "chatterbot", "fortunes", "quiz")


@dataclass(frozen=True)
class Package:
    name: str
    kind: str            # "deb" or "pypi"
    probe: str           # a path inside the package's root that must exist
    pin: str | None = None
    optional: bool = False  # the source works without it, with less data


SOURCE_PACKAGES: dict[str, tuple[Package, ...]] = {
    "wordnet": (Package("wordnet-base", "deb", "usr/share/wordnet/data.noun"),),
    "austen": (Package("r-cran-janeaustenr", "deb", "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"),
               Package("rdata", "pypi", "rdata/parser/__init__.py")),
    "chatterbot": (Package("chatterbot-corpus", "pypi", "chatterbot_corpus/data/english", pin="1.3.3"),),
    # fortunes-min holds fortunes/literature/riddles; fortunes adds the other tame collections.
    # fortunes-off (offensive) is never fetched.
    "fortunes": (Package("fortunes-min", "deb", "usr/share/games/fortunes/riddles"),
                 Package("fortunes", "deb", "usr/share/games/fortunes/wisdom", optional=True)),
    "quiz": (Package("bsdgames", "deb", "usr/share/games/bsdgames/quiz/index"),),
}


@dataclass(frozen=True)
class Located:
    root: Path
    version: str
    origin: str


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mdlm-viz" / "sources"


def _cache_root(cache_dir: Path, pkg: Package) -> Path:
    return Path(cache_dir) / pkg.kind / pkg.name


def _system_version(pkg: Package) -> str | None:
    if pkg.kind == "deb":
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg.name],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        return out.stdout.strip() or None
    from importlib import metadata
    try:
        return metadata.version(pkg.name)
    except metadata.PackageNotFoundError:
        return None


def _system_root(pkg: Package) -> Path | None:
    if pkg.kind == "deb":
        return Path("/") if (Path("/") / pkg.probe).exists() else None
    from importlib.machinery import PathFinder
    top = pkg.probe.split("/")[0]
    spec = PathFinder.find_spec(top)  # sys.path only: not the parser-only rdata we may have loaded
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]).parent
    return root if (root / pkg.probe).exists() else None


def locate(pkg: Package, cache_dir: Path | None) -> Located | None:
    """The package's files: installed on the system first, else extracted in the cache."""
    root = _system_root(pkg)
    if root is not None:
        return Located(root, _system_version(pkg) or "unknown", "system")
    if cache_dir is not None:
        root = _cache_root(cache_dir, pkg)
        stamp = root / "FETCHED.json"
        if stamp.is_file() and (root / pkg.probe).exists():
            return Located(root, json.loads(stamp.read_text())["version"], str(root))
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {tail[0]}")


def _fetch_deb(pkg: Package, cache_dir: Path) -> None:
    downloads = Path(cache_dir) / "deb" / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", pkg.name], cwd=downloads)
    debs = sorted(downloads.glob(f"{pkg.name}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise RuntimeError(f"apt-get download {pkg.name} left no .deb")
    deb = debs[-1]  # the one just downloaded
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    # Extract next to the final place, then rename: a half-extracted package is never a cache hit.
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        _run(["dpkg", "-x", str(deb), tmp], cwd=downloads)
        stamp = {"package": pkg.name, "version": version, "file": deb.name, "sha256": sha256_file(deb)}
        (Path(tmp) / "FETCHED.json").write_text(json.dumps(stamp, indent=2) + "\n")
        target = _cache_root(cache_dir, pkg)
        shutil.rmtree(target, ignore_errors=True)
        Path(tmp).rename(target)


def _fetch_pypi(pkg: Package, cache_dir: Path) -> None:
    downloads = Path(cache_dir) / "pypi" / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{pkg.name}=={pkg.pin}" if pkg.pin else pkg.name
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
          "--disable-pip-version-check", "-q", "-d", str(downloads), spec], cwd=downloads)
    prefix = pkg.name.replace("-", "_")
    wheels = sorted(downloads.glob(f"{prefix}-{pkg.pin or ''}*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"pip download {spec} left no wheel")
    wheel = wheels[-1]
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        stamp = {"package": pkg.name, "version": wheel.name.split("-")[1], "file": wheel.name,
                 "sha256": sha256_file(wheel)}
        (Path(tmp) / "FETCHED.json").write_text(json.dumps(stamp, indent=2) + "\n")
        target = _cache_root(cache_dir, pkg)
        shutil.rmtree(target, ignore_errors=True)
        Path(tmp).rename(target)


def fetch_sources(cache_dir: Path | None = None, sources: Iterable[str] = ALL_SOURCES, *,
                  offline: bool = False, log: Callable[[str], None] = print) -> dict[str, str]:
    """Make each source's packages available in `cache_dir`; returns package -> status line.

    A package already installed or already cached is reused. With `offline=True` nothing is
    downloaded. Failures are reported, never raised: `build_corpus` records what is missing.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    status = {}
    for source in sources:
        for pkg in SOURCE_PACKAGES[source]:
            if pkg.name in status:
                continue
            found = locate(pkg, cache_dir)
            if found is not None:
                status[pkg.name] = f"present {found.version} ({found.origin})"
                continue
            if offline:
                status[pkg.name] = "missing (offline)"
                continue
            try:
                (_fetch_deb if pkg.kind == "deb" else _fetch_pypi)(pkg, cache_dir)
                found = locate(pkg, cache_dir)
                status[pkg.name] = f"fetched {found.version}" if found else "fetched, but probe file absent"
            except (OSError, RuntimeError, subprocess.SubprocessError, zipfile.BadZipFile) as e:
                status[pkg.name] = f"fetch failed: {e}"
                log(f"warning: could not fetch {pkg.kind} package {pkg.name}: {e}")
    return status
