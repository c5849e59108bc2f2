"""Golden sample: the project's own settings, with a small fixed content and carnival folder."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from pelicanconf import *  # noqa: E402,F403

SITENAME = "Golden Sample"
PATH = os.path.join(HERE, "content")
THEME = os.path.join(HERE, "..", "..", "theme")
PLUGIN_PATHS = [os.path.join(HERE, "..", "..", "plugins")]
CARNIVAL_PATH = os.path.join(HERE, "carnival")
CARNIVAL_OFFLINE = True
STATIC_PATHS = []
EXTRA_PATH_METADATA = {}
# A fixed "today": edition 3 stays a call for submissions in this sample on any day.
CARNIVAL_TODAY = "2026-03-01"
