"""Compiled templates kept between builds (Jinja's bytecode cache), beside the content cache.

Every Pelican generator makes its own Jinja environment and compiles each template it uses
again, every build: on this site about a quarter of a build's time. Jinja can keep the compiled
code on disk and reuse it while the template's source is unchanged; this plugin gives every
generator's environment (and the environments made from them, like the carnival's overlay) one
such cache in ``<CACHE_PATH>/templates``, when the build loads cached content at all
(LOAD_CONTENT_CACHE; a publish build, which turns caching off, compiles every template anew).

Jinja keys a compiled template by its name, file and source only, not by the options it was
compiled with; two environments with different options (``trim_blocks``, delimiters,
autoescaping...) would then share code that is right for one of them. Here the key also holds
those options. A cache file that does not load (damaged) counts as missing and is written
again; a cache folder that cannot be written leaves the build compiling as before.
"""

from __future__ import annotations

import hashlib
import logging
import os

from content_cache import BASE_KEY, stable
from jinja2 import Environment
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from pelican import signals

logger = logging.getLogger(__name__)

FOLDER = "templates"

# What the compiled code depends on besides the source (jinja2.Environment's compile-time
# options): the lexer's delimiters and whitespace rules, and what the code generator reads.
_OPTIONS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
)


def options_key(env: Environment, name: str | None = None) -> str:
    """The compile-time options of ``env`` for the template ``name``, as text that names the
    same options in any process. An autoescape function (``select_autoescape``) is asked
    about ``name``, as Jinja does when compiling: two such functions of the same name may
    answer differently."""
    escape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    parts = [stable(type(env))]
    parts += [f"{option}={getattr(env, option, None)!r}" for option in _OPTIONS]
    parts.append(f"autoescape={escape!r}")
    parts.append(f"finalize={stable(env.finalize)}")
    parts.append("extensions=" + ",".join(sorted(env.extensions)))
    return "\n".join(parts)


class TemplateCache(FileSystemBytecodeCache):
    """Jinja's file cache, keyed by the environment's options too, never failing a build."""

    def __init__(self, directory: str) -> None:
        super().__init__(directory, "%s.jinja")
        self._made = False

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        key = hashlib.sha256(
            "\0".join((name, filename or "", options_key(environment, name))).encode("utf-8")
        ).hexdigest()
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as exc:  # a damaged file: compile again, and replace it
            logger.warning(
                "template_cache: %s is damaged (%s: %s); the template is compiled again",
                self._get_cache_filename(bucket),
                type(exc).__name__,
                exc,
            )
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            if not self._made:
                os.makedirs(self.directory, exist_ok=True)
                self._made = True
            super().dump_bytecode(bucket)  # a temporary file, then os.replace: never half a file
        except OSError as exc:
            logger.debug("template_cache: not kept (%s)", exc)


def cache_folder(settings: dict) -> str:
    """``templates`` in the cache folder the host set (content_cache moves CACHE_PATH into a
    folder per settings fingerprint, keeping the host's under BASE_KEY; compiled templates do
    not depend on those settings)."""
    return os.path.join(settings.get(BASE_KEY) or settings["CACHE_PATH"], FOLDER)


def on_generator_init(generator) -> None:
    """Generators make their environment before this signal and load templates after it."""
    settings = generator.settings
    env = getattr(generator, "env", None)
    if env is None or not settings.get("LOAD_CONTENT_CACHE") or env.bytecode_cache is not None:
        return  # no caching wanted, or the host's JINJA_ENVIRONMENT names its own
    env.bytecode_cache = TemplateCache(cache_folder(settings))


def register() -> None:
    signals.generator_init.connect(on_generator_init)
