"""fnnet: the PyTorch tutorials' tensors, autodiff, losses, optimizers and networks in functional JAX."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
