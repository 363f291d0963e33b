"""``torch.nn`` on Flax NNX (being written)."""

from __future__ import annotations

from fnnet.nn import functional as functional
