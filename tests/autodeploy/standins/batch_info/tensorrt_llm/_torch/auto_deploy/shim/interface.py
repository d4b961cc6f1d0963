"""STAND-IN of ``AD/shim/interface.py`` as the ``BatchInfo`` generation has it: ``CachedSequenceInterface`` is
``ad_standin.cached_sequence_interface`` (stored version 52759521949)."""
from ad_standin.cached_sequence_interface import CachedSequenceInterface  # noqa: F401
