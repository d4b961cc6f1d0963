"""STAND-IN of ``AD/shim/interface.py`` (``CacheConfig`` generation), reduced to what the cache-insertion
transform of commit 01d93fe uses (``cm.info``, ``cm.add_cache(name, fn)``) plus allocation:
``initialize_caches()`` calls every initialiser with the ``SequenceInfo``; ``named_args`` = the
SequenceInfo's active arguments, then the caches by name."""
from typing import Callable, Dict

import torch

from ..custom_ops.attention_interface import SequenceInfo


class CachedSequenceInterface:
    def __init__(self, sequence_info: SequenceInfo, device=None):
        self.info = sequence_info
        self.device = device or "cuda"
        self._cache_initializers: Dict[str, Callable] = {}
        self._caches: Dict[str, torch.Tensor] = {}

    @property
    def named_args(self) -> Dict[str, torch.Tensor]:
        return {**self.info.named_args, **self._caches}

    def add_cache(self, name: str, get_cache: Callable) -> None:
        self._cache_initializers[name] = get_cache

    def initialize_caches(self) -> int:
        self._caches = {name: fn(self.info) for name, fn in self._cache_initializers.items()}
        return len(self._caches)
