"""STAND-IN of ``AD/llm_args.py``: shared by every generation's stand-in (``ad_standin.llm_args`` names the
revision mirrored)."""
from ad_standin.llm_args import LlmArgs  # noqa: F401
