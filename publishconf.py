"""Publishing settings: import development settings and override what publishing changes."""

import os
import sys

sys.path.append(os.curdir)
from pelicanconf import *  # noqa: E402,F403

SITEURL = os.environ.get("SITEURL", "https://warm-introduction.example")
FEED_DOMAIN = SITEURL
RELATIVE_URLS = False
DELETE_OUTPUT_DIRECTORY = True
# A published build reads every file afresh and leaves no cache behind.
CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
