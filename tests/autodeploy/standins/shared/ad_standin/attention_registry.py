"""``AttentionRegistry`` of ``AD/custom_ops/attention_interface.py``, the same in every generation the
stand-ins mirror (stored versions 18438348684, 46243425432, 51834141611): ``register`` asserts a new name,
``get`` asserts a known one, ``has``. The registry is class state: each generation's stand-in is imported
afresh (tests/autodeploy/conftest.py purges ``ad_standin`` with ``tensorrt_llm``)."""
from typing import Dict


class AttentionRegistry:
    _attention_registry: Dict[str, type] = {}  # name -> that generation's AttentionDescriptor subclass

    @classmethod
    def register(cls, kernel_source: str):
        def decorator(attention_cls):
            assert kernel_source not in cls._attention_registry, f"Attention source {kernel_source} already registered."
            cls._attention_registry[kernel_source] = attention_cls
            return attention_cls

        return decorator

    @classmethod
    def get(cls, kernel_source: str):
        assert cls.has(kernel_source), f"Attention source {kernel_source} not registered."
        return cls._attention_registry[kernel_source]

    @classmethod
    def has(cls, kernel_source: str) -> bool:
        return kernel_source in cls._attention_registry
