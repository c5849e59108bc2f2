"""The main module of this package's worker processes when it is installed as
``pelican.plugins.blog_carnival`` (see ``parsepool._without_main``): run first in each worker,
before anything is unpickled there.

What a worker is sent names this package's functions, and importing them imports the parent
package ``pelican`` first: its ``__init__`` imports the whole of Pelican (generators, readers,
docutils, Jinja2), about 0.3 s of CPU per worker, none of which the workers use (the
carnival's core imports no Pelican). Here ``pelican`` is registered as the real package
(its spec and ``__path__``, so ``pelican.plugins.blog_carnival`` is found as usual) whose
``__init__`` runs only when something asks for one of its names: then it behaves exactly as
if it had been imported.

Run as a script (``runpy.run_path``, under the name ``__mp_main__``), so it imports nothing of
this package.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types

PARENT = "pelican"
_running = threading.RLock()  # one thread runs an __init__; the others wait for it
_started: set[str] = set()  # the packages whose __init__ has started


class _Deferred(types.ModuleType):
    """A package whose ``__init__`` has not run yet: the first name looked up that it does
    not have runs it (in this same module object), then answers as the real module."""

    def __getattr__(self, name: str) -> object:
        with _running:
            if self.__name__ not in _started:
                _started.add(self.__name__)
                self.__spec__.loader.exec_module(self)
                self.__class__ = types.ModuleType  # from now on an ordinary module
        try:  # (the __init__ itself asking for a name it has not set yet lands here too)
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None


def defer(package: str) -> types.ModuleType | None:
    """Register ``package`` in ``sys.modules`` without running its ``__init__``; None when it
    is imported already or cannot be found (then the import goes as usual)."""
    if package in sys.modules:
        return None
    spec = importlib.util.find_spec(package)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = _Deferred(package)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    module.__package__ = package
    sys.modules[package] = module
    return module


if __name__ in {"__mp_main__", "__main__"}:  # a worker's main module; imported, it does nothing
    defer(PARENT)
