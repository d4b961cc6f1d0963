"""STAND-IN of ``AD/models/factory.py``: shared by both generations (``ad_standin.models_factory`` names the revision)."""
from ad_standin.models_factory import *  # noqa: F401,F403
from ad_standin.models_factory import ModelFactory, ModelFactoryRegistry  # noqa: F401
