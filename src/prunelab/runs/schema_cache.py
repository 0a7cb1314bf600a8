"""The schemas of `_target_`s kept between commands, so that checking a node needs no import of its module.

One JSON file per target in `paths.user_cache("schemas")`, keyed by the target, where its top-level package is
found (`importlib.util.find_spec`, which imports nothing) and the interpreter. An entry holds the stamp of every
code root that was loaded when its schema was read: a folder of installed packages (site-packages) by the
folder's own mtime, which every install, upgrade or removal changes (walking torch's 2,300 files would cost
~50 ms a command); any other package (an editable install, a plugin beside the configs) by the count, sizes and
newest mtime of its .py files. An entry whose stamp differs, or that is not as it was written (it does not parse,
or its digest differs), is not read; a cache that cannot be written only means the imports.
"""

import contextlib
import hashlib
import importlib.util
import json
import os
import site
import sys
import sysconfig
from pathlib import Path

from prunelab import atomic
from prunelab.paths import user_cache


def _site_dirs() -> set[str]:
    found = {*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_path("purelib")}
    found |= {p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")}
    return {os.path.realpath(p) for p in found}


def _stdlib_dirs() -> tuple[str, ...]:
    return tuple(os.path.realpath(sysconfig.get_path(k)) + os.sep for k in ("stdlib", "platstdlib"))


def root(location: str, sites: set[str]) -> str | None:
    """The code root a module's file or package folder belongs to: its site-packages folder, else itself; None for
    the standard library."""
    real = os.path.realpath(location)
    parent = next((s for s in sites if real.startswith(s + os.sep)), None)
    if parent:
        return parent
    return None if real.startswith(_stdlib_dirs()) else real


def loaded_roots() -> set[str]:
    """The code roots of every top-level module loaded now."""
    sites, roots = _site_dirs(), set()
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if spec is None or spec.name != name or "." in name:  # (`__main__` is a package's module)
            continue
        locations = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.has_location else [])
        roots |= {r for r in (root(loc, sites) for loc in locations if loc) if r}
    return roots


def stamp(path: str, sites: set[str]) -> list | None:
    """What changes when the code under `path` does: a site folder's mtime; else count, sizes, newest mtime of its
    .py files (the file's own, for a module); None when it is gone."""
    try:
        if path in sites:
            return ["site", os.stat(path).st_mtime_ns]
        if not os.path.isdir(path):
            info = os.stat(path)
            return ["file", info.st_size, info.st_mtime_ns]
        return ["tree", *_tree(path)]
    except OSError:
        return None


def _tree(path: str) -> list[int]:
    count = size = newest = 0
    folders = [path]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    count, size, newest = count + 1, size + info.st_size, max(newest, info.st_mtime_ns)
    return [count, size, newest]


def entry_path(target: str) -> Path | None:
    """The cache file of `target`; None when its top-level package is not found."""
    try:
        spec = importlib.util.find_spec(target.partition(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    where = [spec.origin, *(spec.submodule_search_locations or [])]
    key = json.dumps([target, where, sys.executable, sys.version])
    return user_cache("schemas") / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _digest(target: str, stamps: dict, schema: dict) -> str:
    return hashlib.sha256(json.dumps([target, stamps, schema], sort_keys=True).encode()).hexdigest()


def read(target: str) -> dict | None:
    """The cached schema of `target`, or None when there is none, it is stale, or it is not as `write` left it."""
    path = entry_path(target)
    try:
        entry = json.loads(path.read_text()) if path else {}
        stamps, schema, sites = entry["stamps"], entry["schema"], _site_dirs()
        if (stamps and entry["digest"] == _digest(target, stamps, schema)
                and all(stamp(p, sites) == s for p, s in stamps.items())):
            return schema
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def write(target: str, schema: dict) -> None:
    """Keep the schema of `target` (read just now, its module imported) with the stamps of the code loaded now."""
    path, sites = entry_path(target), _site_dirs()
    if path is None:
        return
    stamps = {r: stamp(r, sites) for r in sorted(loaded_roots())}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, {"target": target, "stamps": stamps, "schema": schema,
                                 "digest": _digest(target, stamps, schema)})
