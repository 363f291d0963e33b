"""Temporary alias of :mod:`fnnet.nn.functional`'s losses while the tree moves (removed before landing)."""

from fnnet.nn._losses import *  # noqa: F401,F403
from fnnet.nn._losses import __all__  # noqa: F401
