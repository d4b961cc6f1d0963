"""STAND-IN of ``AD/transform/__init__.py``; ``upstream_transforms`` plays ``transform/library``."""
from . import interface, optimizer, upstream_transforms  # noqa: F401
