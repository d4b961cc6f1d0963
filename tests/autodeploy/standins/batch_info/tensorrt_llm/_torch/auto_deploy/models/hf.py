"""STAND-IN of ``AD/models/hf.py``: shared by both generations (``ad_standin.models_hf`` names the revision)."""
from ad_standin.models_hf import AutoModelForCausalLMFactory  # noqa: F401
