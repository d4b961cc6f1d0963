"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/models/factory.py`` (revision 01d93fe): ``ModelFactory``
constructor ``(model, model_kwargs=None, tokenizer=None, tokenizer_kwargs=None,
skip_loading_weights=False, max_seq_len=512, **kwargs)`` and ``ModelFactoryRegistry`` (``register(name)``
overwrites silently, ``get`` asserts, ``has``, ``entries``)."""
from typing import Dict, List, Optional, Type


class ModelFactory:
    def __init__(self, model: str, model_kwargs: Optional[dict] = None, tokenizer: Optional[str] = None,
                 tokenizer_kwargs: Optional[dict] = None, skip_loading_weights: bool = False, max_seq_len: int = 512, **kwargs):
        self._model = model
        self.model_kwargs = model_kwargs or {}
        self._tokenizer = tokenizer
        self.tokenizer_kwargs = tokenizer_kwargs or {}
        self.skip_loading_weights = skip_loading_weights
        self.max_seq_len = max_seq_len
        self._sharding_config: dict = {}

    @property
    def model(self) -> str:
        return self._model

    @property
    def tokenizer(self) -> Optional[str]:
        return self._tokenizer

    def init_tokenizer(self):
        return None


class ModelFactoryRegistry:
    _registry: Dict[str, Type[ModelFactory]] = {}

    @classmethod
    def register(cls, name: str):
        def wrapper(model_factory_cls):
            cls._registry[name] = model_factory_cls
            return model_factory_cls

        return wrapper

    @classmethod
    def get(cls, name: str) -> Type[ModelFactory]:
        assert cls.has(name), f"Model Factory {name} not found."
        return cls._registry[name]

    @classmethod
    def has(cls, model_factory_cls: str) -> bool:
        return model_factory_cls in cls._registry

    @classmethod
    def entries(cls) -> List[str]:
        return list(cls._registry.keys())
