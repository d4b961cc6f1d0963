"""STAND-IN of ``tensorrt_llm/llmapi/llm_args.py``: ``KvCacheConfig`` only, shared with the ``LlmArgs``
stand-in (``ad_standin.llm_args``)."""
from ad_standin.llm_args import KvCacheConfig  # noqa: F401
