"""STAND-IN of ``AD/models/__init__.py``: imports the factory registry and upstream's factories."""
from . import factory, hf, nemotron_flash  # noqa: F401
