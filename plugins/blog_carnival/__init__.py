"""Blog carnival host: a Pelican plugin whose core imports no Pelican.

Only ``register`` touches Pelican, and it imports the adapter lazily so that the
core modules (config, sources, fetch, parse, select, lock, render) can be imported
and tested without Pelican.
"""


def register():
    """Wire the carnival adapter to Pelican's signals."""
    from .adapter import register as _register

    _register()
