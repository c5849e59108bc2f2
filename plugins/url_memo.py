"""Each post's, page's, tag's, category's and author's URL worked out once per build.

Pelican's ``url`` and ``save_as`` are properties that format the URL setting with the object's
metadata on every read, and a build reads them again and again: a post's URL on its own page,
on every tag, category, author, archive and index page that lists it, in every feed; each
page's ``save_as`` in the menu of every page written. At 1,000 posts that is about 44,000
formattings for some 5,000 distinct answers, more than a tenth of the build.

From the moment every generator has finished its context (``all_generators_finalized``:
metadata, slugs and translations are settled, nothing is written yet) to the end of the build,
each object keeps the first answer in its own ``__dict__`` (as Pelican's own ``memoized``
keeps ``get_content``). Before that moment nothing is kept, so a plugin that changes a slug
or an ``override_url`` while the context is built is still followed; after the build
(``finalized``) nothing more is kept, for the next build of an autoreloading Pelican.
"""

from __future__ import annotations

from pelican import signals
from pelican.contents import Content, Static
from pelican.urlwrappers import URLWrapper

NAMES = ("url", "save_as")
PREFIX = "_url_memo_"


class _State:
    keeping = False


def memoised(prop: property, name: str) -> property:
    """``prop`` answering from the object's own copy while ``_State.keeping``."""
    key = PREFIX + name
    compute = prop.fget

    def read(self):  # noqa: ANN001, ANN202
        if not _State.keeping or isinstance(self, Static):
            return compute(self)
        kept = self.__dict__.get(key)
        if kept is None:
            kept = self.__dict__[key] = compute(self)
        return kept

    read.__doc__ = prop.__doc__
    read.memoised = True  # type: ignore[attr-defined]
    return property(read, prop.fset, prop.fdel, prop.__doc__)


def install() -> None:
    """Wrap the URL properties of Pelican's content and URL wrapper classes (once)."""
    for cls in (Content, URLWrapper):
        for name in NAMES:
            prop = cls.__dict__[name]
            if not getattr(prop.fget, "memoised", False):
                setattr(cls, name, memoised(prop, name))


def start(*_args) -> None:
    _State.keeping = True


def stop(*_args) -> None:
    _State.keeping = False


def register() -> None:
    install()
    signals.get_generators.connect(stop)  # a build begins (even after one that failed midway)
    signals.all_generators_finalized.connect(start)
    signals.finalized.connect(stop)
