"""Pelican's content cache, kept apart per settings fingerprint.

Pelican 4.12 caches, per source file, what its readers produced (the HTML and the metadata,
CONTENT_CACHING_LAYER "reader") and drops an entry only when that file's stamp changes
(CHECK_MODIFIED_METHOD). It does not notice a changed setting that reading depends on (MARKDOWN,
TIMEZONE, slug rules; the pickled Tag and Category objects even keep the old settings), nor a new
Pelican or Markdown release. This plugin points CACHE_PATH at a folder named after a hash of the
settings and of those versions, and after a build that succeeded removes the folders of other
fingerprints. Pelican writes a cache file in place: two builds at once (a host's build beside
`invoke serve --autoreload`) interleave their bytes in it, and a build killed while saving
leaves half of it. So this plugin has Pelican save each cache file whole, through the carnival's
one atomic-write helper, and still checks each file before Pelican loads it (one left by an
older version, or by a full disk): a damaged one is removed with a warning. Articles
themselves are never cached at this layer: every build makes them anew from the cached
reading, so what plugins attach to them (carnival_entry, neighbours) is fresh.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.metadata
import logging
import os
import pickle
import re
import shutil
from collections.abc import Mapping

from pelican import signals
from pelican.cache import FileDataCacher

try:
    from blog_carnival.textutil import write_atomic
except ImportError:  # the carnival is installed (pip): Pelican loads that copy, not plugins/'
    from pelican.plugins.blog_carnival.textutil import write_atomic

logger = logging.getLogger(__name__)

# Settings that decide where a build reads and writes, not what a reader makes of a file.
IGNORED = frozenset(
    {
        "OUTPUT_PATH",
        "CACHE_PATH",
        "CACHE_CONTENT",
        "LOAD_CONTENT_CACHE",
        "DELETE_OUTPUT_DIRECTORY",
        "OUTPUT_RETENTION",
        "WRITE_SELECTED",
    }
)
# "_": plugins' per-build state; "CARNIVAL_": the carnival reads its own files every build
# and hooks no reader, so toggling offline mode keeps the cache.
IGNORED_PREFIXES = ("_", "CARNIVAL_")
# Packages whose release changes what the readers produce (or the pickled classes).
VERSIONED = ("pelican", "markdown", "docutils", "pygments")
FINGERPRINT = re.compile(r"[0-9a-f]{16}")
BASE_KEY = "_CONTENT_CACHE_BASE"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable(value: object) -> str:
    """A text for `value` that is the same in every process (no memory addresses)."""
    if isinstance(value, Mapping):
        items = sorted(f"{stable(k)}:{stable(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(stable(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(stable(v) for v in value) + "]"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return _ADDRESS.sub("", repr(value))


def fingerprint(settings: Mapping[str, object]) -> str:
    """Hash of the settings a reading can depend on and of the reading packages' versions."""
    kept = {
        key: value
        for key, value in settings.items()
        if key not in IGNORED and not key.startswith(IGNORED_PREFIXES)
    }
    versions = {}
    for package in VERSIONED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    text = stable(kept) + stable(versions)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def on_initialized(pelican) -> None:
    settings = pelican.settings
    if not (settings.get("CACHE_CONTENT") or settings.get("LOAD_CONTENT_CACHE")):
        return
    base = settings.setdefault(BASE_KEY, settings["CACHE_PATH"])
    settings["CACHE_PATH"] = os.path.join(base, fingerprint(settings))
    if settings.get("LOAD_CONTENT_CACHE"):
        discard_damaged(settings["CACHE_PATH"], gzipped=settings.get("GZIP_CACHE", True))


def discard_damaged(folder: str, *, gzipped: bool) -> None:
    """Remove cache files that would not load: gzip checks its CRC and length when read to the
    end, which a file cut short by a killed build fails; an uncompressed one is unpickled."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return  # no cache yet
    for name in names:
        path = os.path.join(folder, name)
        try:
            if gzipped:
                with gzip.open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass
            else:
                with open(path, "rb") as f:
                    pickle.load(f)
        except Exception as exc:  # any failure means Pelican's own load would fail too
            logger.warning(
                "content_cache: %s is damaged (%s: %s); its files are read afresh",
                path,
                type(exc).__name__,
                exc,
            )
            with contextlib.suppress(OSError):
                os.remove(path)


def on_readers_init(readers) -> None:
    """Readers get the settings without plugins' private state ("_" keys): the Tag, Category
    and Author objects they make keep their settings and are pickled into the cache with them,
    and a plugin's build state (the carnival's fetched editions) has no place there; it might
    not even pickle. Readers.__init__ hands its settings to each reader after this signal."""
    if readers.settings.get("CACHE_CONTENT"):
        readers.settings = {k: v for k, v in readers.settings.items() if not k.startswith("_")}


def save_cache_whole(self: FileDataCacher) -> None:
    """FileDataCacher.save_cache, with the file replaced whole instead of rewritten in place: a
    build reading it meanwhile, or one killed midway, sees the old cache or the new one. Same
    format (a pickle, gzipped when GZIP_CACHE), same warning when it cannot be saved."""
    if not self._cache_data_policy:
        return
    try:
        data = pickle.dumps(self._cache)
        if self._cache_open is gzip.open:
            data = gzip.compress(data, mtime=0)
        os.makedirs(self.settings["CACHE_PATH"], exist_ok=True)
        # not fsynced: a cache lost to a power cut is only read afresh (discard_damaged)
        write_atomic(self._cache_path, data, durable=False)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as err:
        logger.warning("Could not save cache %s\n ... %s", self._cache_path, err)


def on_finalized(pelican) -> None:
    """Only this fingerprint's cache can be loaded again: remove the others."""
    settings = pelican.settings
    base = settings.get(BASE_KEY)
    if not base or not settings.get("CACHE_CONTENT"):
        return
    current = os.path.basename(settings["CACHE_PATH"])
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if name != current and FINGERPRINT.fullmatch(name):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            logger.debug("content_cache: removed the cache of other settings %s", name)


def save_caches_whole() -> None:
    """Have Pelican save every cache file with ``save_cache_whole``; once per process is
    enough (the same for every build)."""
    FileDataCacher.save_cache = save_cache_whole


def register() -> None:
    save_caches_whole()
    signals.initialized.connect(on_initialized)
    signals.readers_init.connect(on_readers_init)
    signals.finalized.connect(on_finalized)
