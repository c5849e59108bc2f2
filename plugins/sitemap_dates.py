"""Reproducible sitemaps: pelican-sitemap dates every page that has no date of its own (the
home page, archives, tag and carnival indexes, undated pages) with the moment the plugin was
imported, so two builds of the same content differ. This gives those pages the date of the
newest post or page instead: they change when the content does, and a rebuild is identical.

It sets the one attribute pelican-sitemap 1.2 keeps for that date (``generator.now``) and does
nothing when that plugin is not loaded or has changed shape.
"""

from __future__ import annotations

import logging

from pelican import signals

logger = logging.getLogger(__name__)


def newest_date(generators):
    dates = []
    for generator in generators:
        for item in [*getattr(generator, "articles", ()), *getattr(generator, "pages", ())]:
            stamp = getattr(item, "modified", None) or getattr(item, "date", None)
            if stamp is not None:
                dates.append(stamp)
    return max(dates, default=None)


def on_all_generators_finalized(generators) -> None:
    try:
        from pelican.plugins.sitemap import sitemap
    except ImportError:
        return
    newest = newest_date(generators)
    if newest is not None and hasattr(sitemap, "generator") and hasattr(sitemap.generator, "now"):
        sitemap.generator.now = newest
    else:
        logger.debug("sitemap_dates: left pelican-sitemap's dates alone")


def register() -> None:
    signals.all_generators_finalized.connect(on_all_generators_finalized)
