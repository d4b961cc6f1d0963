"""STAND-IN of ``tensorrt_llm/llmapi/llm_args.py``: only the ``KvCacheConfig`` fields the adapter reads
(``dtype``, default ``"auto"``; ``tokens_per_block``, default 32 — upstream's defaults)."""
from pydantic import BaseModel


class KvCacheConfig(BaseModel):
    dtype: str = "auto"
    tokens_per_block: int = 32
    free_gpu_memory_fraction: float = 0.9
    enable_block_reuse: bool = True
