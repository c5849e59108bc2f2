"""Config validation: every problem names the file and the field."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from blog_carnival.config import load_carnivals
from blog_carnival.errors import ConfigError
from blog_carnival.settings import read_settings

CARNIVAL = """
title = "The Test Carnival"
description = "About testing."
organizer = { name = "Org", url = "https://org.example/" }
"""

EDITION = """
number = {number}
title = "Edition {number}"
host = {{ name = "Host", url = "https://host.example/" }}
opens = 2026-10-01
deadline = 2026-10-31
date = 2026-11-02
intro = "Hello."
"""


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "carnival"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_carnivals(root)
    return info.value.problems


def test_valid_carnival_loads_with_sorted_editions(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/002.toml": EDITION.format(number=2),
            "demo/001.toml": EDITION.format(number=1)
            + '\n[[entries]]\nurl = "https://a.example/p"\npick = true\n',
        },
    )
    (carnival,) = load_carnivals(root)
    assert carnival.slug == "demo"
    assert [e.number for e in carnival.editions] == [1, 2]
    first = carnival.editions[0]
    assert first.deadline == dt.date(2026, 10, 31)
    assert first.entries[0].pick is True
    assert first.key == "demo/1"
    assert carnival.full_title(first) == "The Test Carnival #1: Edition 1"


def test_missing_field_names_file_and_field(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1).replace('title = "Edition 1"\n', ""),
        },
    )
    assert problems(root) == ["carnival/demo/001.toml: title: missing"]


def test_bad_date_is_named(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1).replace(
                "deadline = 2026-10-31", 'deadline = "2026-13-45"'
            ),
        },
    )
    (msg,) = problems(root)
    assert msg.startswith("carnival/demo/001.toml: deadline: must be a date")


def test_deadline_before_opens(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1).replace(
                "opens = 2026-10-01", "opens = 2026-11-01"
            ),
        },
    )
    assert any("deadline: 2026-10-31 is before opens 2026-11-01" in p for p in problems(root))


def test_duplicate_edition_number(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1),
            "demo/0001.toml": EDITION.format(number=1),
        },
    )
    assert any("duplicate edition number 1" in p for p in problems(root))


def test_number_must_match_file_name(tmp_path):
    root = make(
        tmp_path, {"demo/carnival.toml": CARNIVAL, "demo/001.toml": EDITION.format(number=7)}
    )
    assert problems(root) == ["carnival/demo/001.toml: number: is 7 but the file is named 001.toml"]


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x", "javascript:alert(1)", "/relative/post", "file:///etc/passwd"]
)
def test_non_http_url_is_refused(tmp_path, url):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1) + f'\n[[entries]]\nurl = "{url}"\n',
        },
    )
    (msg,) = problems(root)
    assert msg.startswith("carnival/demo/001.toml: entries[1].url: must be an absolute http(s) URL")


def test_unknown_key_suggests_nearest(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL,
            "demo/001.toml": EDITION.format(number=1).replace("deadline =", "dedline ="),
        },
    )
    found = problems(root)
    assert "carnival/demo/001.toml: dedline: unknown key (did you mean 'deadline'?)" in found


def test_duplicate_entry_url_is_named(tmp_path):
    entries = '\n[[entries]]\nurl = "https://a.example/p/"\n\n[[entries]]\nurl = "http://A.example/p?utm_source=x"\n'
    root = make(
        tmp_path,
        {"demo/carnival.toml": CARNIVAL, "demo/001.toml": EDITION.format(number=1) + entries},
    )
    (msg,) = problems(root)
    assert (
        "entries[2].url: duplicate entry http://A.example/p?utm_source=x (same post as entries[1])"
        in msg
    )


def test_bad_toml_shows_line(tmp_path):
    root = make(
        tmp_path,
        {"demo/carnival.toml": CARNIVAL, "demo/001.toml": 'title = "unclosed\nnumber = 1\n'},
    )
    (msg,) = problems(root)
    assert msg.startswith("carnival/demo/001.toml: invalid TOML:")
    assert "line 1" in msg


def test_section_must_be_listed(tmp_path):
    edition = (
        EDITION.format(number=1)
        + 'sections = ["Before", "After"]\n[[entries]]\nurl = "https://a.example/p"\nsection = "Aftr"\n'
    )
    root = make(tmp_path, {"demo/carnival.toml": CARNIVAL, "demo/001.toml": edition})
    (msg,) = problems(root)
    assert (
        "entries[1].section: 'Aftr' is not one of the edition's sections (did you mean 'After'?)"
        in msg
    )


def test_all_problems_reported_together(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL.replace('title = "The Test Carnival"', ""),
            "demo/001.toml": EDITION.format(number=1).replace('intro = "Hello."', ""),
        },
    )
    found = problems(root)
    assert "carnival/demo/carnival.toml: title: missing" in found
    assert "carnival/demo/001.toml: intro: missing" in found


def test_python_files_in_data_folder_are_refused(tmp_path):
    root = make(tmp_path, {"demo/carnival.toml": CARNIVAL, "__init__.py": ""})
    assert any("holds data only" in p for p in problems(root))


def test_external_edition_needs_no_intro(tmp_path):
    edition = EDITION.format(number=1).replace(
        'intro = "Hello."', 'roundup_url = "https://other.example/r/"'
    )
    root = make(tmp_path, {"demo/carnival.toml": CARNIVAL, "demo/001.toml": edition})
    (carnival,) = load_carnivals(root)
    assert carnival.editions[0].external


def test_settings_defaults_and_overrides(tmp_path):
    s = read_settings(
        {"CARNIVAL_OFFLINE": "1", "CARNIVAL_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"]}, tmp_path
    )
    assert s.offline is True
    assert s.allowed_private_hosts == frozenset({"127.0.0.1"})
    assert s.max_bytes == 10 * 1024 * 1024
    assert s.cache_path == (tmp_path / ".carnival-cache").resolve()


def test_misspelt_setting_names_nearest_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_settings({"CARNIVAL_TIMOUT": 3}, tmp_path)
    assert info.value.problems == [
        "setting CARNIVAL_TIMOUT is not a carnival setting (did you mean CARNIVAL_TIMEOUT?)"
    ]


def test_bad_number_setting(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_settings({"CARNIVAL_CONCURRENCY": 0}, tmp_path)
    assert "CARNIVAL_CONCURRENCY must be at least 1" in info.value.problems[0]


def test_submit_email_and_time_zone_are_read_and_handed_to_editions(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL
            + 'submit_email = "host@host.example"\ntimezone = "Europe/Lisbon"\n',
            "demo/001.toml": EDITION.format(number=1),
        },
    )
    (carnival,) = load_carnivals(root)
    assert carnival.submit_email == "host@host.example"
    assert carnival.timezone == carnival.editions[0].timezone == "Europe/Lisbon"


def test_bad_submit_email_and_unknown_time_zone_name_the_field(tmp_path):
    root = make(
        tmp_path,
        {
            "demo/carnival.toml": CARNIVAL
            + 'submit_email = "not an address"\ntimezone = "Mars/Olympus"\n'
        },
    )
    found = problems(root)
    assert any("carnival.toml: submit_email: must be an e-mail address" in p for p in found)
    assert any("carnival.toml: timezone: unknown time zone 'Mars/Olympus'" in p for p in found)
