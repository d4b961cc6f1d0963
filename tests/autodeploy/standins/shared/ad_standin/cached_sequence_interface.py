"""``CachedSequenceInterface`` of ``AD/shim/interface.py``, stored version 52759521949 (read for the ``BatchInfo``
generation; the resource-handler one is assumed to match in these members), shared by both stand-ins:
``CachedSequenceInterface(max_seq_len, max_batch_size, max_num_tokens, device=None, kv_cache_config=None)``
builds the ``SequenceInfo`` with ``kv_cache_config.tokens_per_block``; ``add_resource(suffix, handler)``
returns the resource's graph name ``r{index}_{suffix}``; ``named_args`` = the SequenceInfo's active
arguments, then the caches by name. Reduced: ``initialize_resources(num_blocks)`` allocates every
resource with its handler's ``allocate`` (upstream hands paged KV and matching SSM / conv states to
TensorRT-LLM's KV / Mamba cache managers, which allocate the same shapes)."""
from typing import Dict, Optional

import torch

from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import ResourceHandler, SequenceInfo
from tensorrt_llm.llmapi.llm_args import KvCacheConfig


class CachedSequenceInterface:
    def __init__(self, max_seq_len: int, max_batch_size: int, max_num_tokens: int, device=None,
                 kv_cache_config: Optional[KvCacheConfig] = None, vocab_size_padded: Optional[int] = None):
        self.device = device or "cuda"
        self.kv_cache_config = kv_cache_config or KvCacheConfig()
        self.info = SequenceInfo(max_seq_len=max_seq_len, max_batch_size=max_batch_size, tokens_per_block=self.kv_cache_config.tokens_per_block, max_num_tokens=max_num_tokens)
        self._resource_lookup: Dict[str, ResourceHandler] = {}
        self._caches: Dict[str, torch.Tensor] = {}

    @property
    def named_args(self) -> Dict[str, torch.Tensor]:
        return {**self.info.named_args, **self._caches}

    def add_resource(self, suffix: str, resource_handler: ResourceHandler) -> str:
        full_name = f"r{len(self._resource_lookup)}_{suffix}"
        self._resource_lookup[full_name] = resource_handler
        return full_name

    def initialize_resources(self, num_blocks: int) -> int:
        self.info.update_cache_information(num_blocks)
        self._caches = {name: handler.allocate(self.info) for name, handler in self._resource_lookup.items()}
        return len(self._caches)
