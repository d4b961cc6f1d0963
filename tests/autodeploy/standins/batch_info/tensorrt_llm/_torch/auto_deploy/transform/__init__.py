"""STAND-IN of ``AD/transform/__init__.py``; ``upstream_transforms`` plays ``transform/library``."""
from . import interface, library, optimizer  # noqa: F401
