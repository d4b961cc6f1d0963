"""STAND-IN of ``AD/transform/__init__.py``; ``upstream_transforms`` plays ``transform/library``."""
from . import interface, upstream_transforms  # noqa: F401
