"""STAND-IN of ``AD/shim/``."""
