"""Compiled templates are reused only while they are right (plugins/template_cache.py).

Real Jinja environments over real template files; an environment that counts its compiles
shows whether a template came from the cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2.bccache import bc_magic
from template_cache import TemplateCache, cache_folder, options_key


class Counting(Environment):
    """An environment that counts the templates it had to compile."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compiled = 0

    def compile(self, *args, **kwargs):
        self.compiled += 1
        return super().compile(*args, **kwargs)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "page.html").write_text("{% if on %}\n  <p>{{ word }}</p>\n{% endif %}\n")
    return folder


def env(templates: Path, cache: Path, **options) -> Counting:
    return Counting(
        loader=FileSystemLoader(str(templates)),
        bytecode_cache=TemplateCache(str(cache)),
        **options,
    )


def render(environment: Environment) -> str:
    return environment.get_template("page.html").render(on=True, word="<hi>")


def test_a_second_environment_reuses_the_compiled_template(templates, tmp_path):
    first = env(templates, tmp_path / "cache", autoescape=True)
    second = env(templates, tmp_path / "cache", autoescape=True)
    assert render(first) == render(second) == "\n  <p>&lt;hi&gt;</p>\n"
    assert (first.compiled, second.compiled) == (1, 0)


def test_a_changed_source_is_compiled_again(templates, tmp_path):
    render(env(templates, tmp_path / "cache"))
    (templates / "page.html").write_text("<b>{{ word }}</b>")
    again = env(templates, tmp_path / "cache")
    assert render(again) == "<b><hi></b>"
    assert again.compiled == 1


@pytest.mark.parametrize(
    "options",
    [
        {"trim_blocks": True, "lstrip_blocks": True},
        {"autoescape": True},
        {"variable_start_string": "[[", "variable_end_string": "]]"},
        {"keep_trailing_newline": True},
    ],
)
def test_environments_with_other_options_do_not_share_code(templates, tmp_path, options):
    """Jinja's own file cache would hand the code compiled under one set of options to an
    environment with another (its key is the template's name and source only)."""
    cache = tmp_path / "cache"
    plain, other = env(templates, cache), env(templates, cache, **options)
    assert render(other) == render(Counting(loader=FileSystemLoader(str(templates)), **options))
    assert render(plain) == render(Counting(loader=FileSystemLoader(str(templates))))
    assert (plain.compiled, other.compiled) == (1, 1)
    assert len(list(cache.iterdir())) == 2
    third = env(templates, cache, **options)
    assert render(third) == render(other) and third.compiled == 0
    assert options_key(plain) != options_key(other)


def test_autoescape_functions_are_asked_about_the_template(templates, tmp_path):
    """Two ``select_autoescape`` functions share a name but not their answer for page.html."""
    cache = tmp_path / "cache"
    html = env(templates, cache, autoescape=select_autoescape(["html"]))
    xml = env(templates, cache, autoescape=select_autoescape(["xml"]))
    assert render(html) == "\n  <p>&lt;hi&gt;</p>\n"
    assert render(xml) == "\n  <p><hi></p>\n"
    assert (html.compiled, xml.compiled) == (1, 1)


def test_options_key_is_the_same_for_the_same_options(templates, tmp_path):
    a = env(templates, tmp_path / "a", trim_blocks=True, autoescape=True)
    b = env(templates, tmp_path / "b", trim_blocks=True, autoescape=True)
    assert options_key(a) == options_key(b)
    assert " at 0x" not in options_key(a)


def test_a_damaged_file_is_compiled_again_with_a_warning(templates, tmp_path, caplog):
    cache = tmp_path / "cache"
    render(env(templates, cache))
    (stored,) = cache.iterdir()
    stored.write_bytes(stored.read_bytes()[: len(bc_magic) + 3])  # cut inside its checksum
    with caplog.at_level(logging.WARNING, logger="template_cache"):
        again = env(templates, cache)
        assert render(again) == "\n  <p><hi></p>\n"
    assert again.compiled == 1
    assert f"{stored} is damaged" in caplog.text
    later = env(templates, cache)  # the file was written again, whole
    assert render(later) == "\n  <p><hi></p>\n" and later.compiled == 0


def test_a_cache_folder_that_cannot_be_written_only_costs_compiling(templates, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder would go")
    first = env(templates, blocked / "templates")
    assert render(first) == "\n  <p><hi></p>\n"
    second = env(templates, blocked / "templates")
    assert render(second) == "\n  <p><hi></p>\n" and second.compiled == 1


def test_the_folder_is_beside_the_content_caches():
    assert cache_folder({"CACHE_PATH": "cache"}) == "cache/templates"
    settings = {"CACHE_PATH": "cache/0123456789abcdef", "_CONTENT_CACHE_BASE": "cache"}
    assert cache_folder(settings) == "cache/templates"
