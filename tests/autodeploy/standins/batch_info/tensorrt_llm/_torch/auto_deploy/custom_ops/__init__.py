"""STAND-IN of ``AD/custom_ops/__init__.py``: imports the interface and upstream's backends."""
from . import attention_interface, upstream_backends  # noqa: F401
