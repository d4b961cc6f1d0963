"""``AD/transform/optimizer.py`` as both generations have it (revision read for
/work/shared/research/autodeploy_api_notes.md §3.2): ``InferenceOptimizer(factory, config)`` cleans the
config — ``TransformConfig`` objects dumped to dicts, keys stably sorted by ``Stages(cfg["stage"])`` (a key
without ``stage`` fails here), each validated by ``TransformRegistry.get_config_class(key)`` (an unregistered
key raises ``KeyError`` here, when the optimizer is built) — and ``__call__(cm, mod=None)`` runs each
transform in that order, handing each the previous one's module. How a transform is called differs by
generation (``call_transform``)."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from .transform_core import SharedConfig, Stages, TransformConfig, TransformRegistry


def clean_config(config: Mapping[str, Any]) -> Dict[str, TransformConfig]:
    dumped = {k: (v.model_dump() if isinstance(v, TransformConfig) else dict(v)) for k, v in config.items()}
    ordered = sorted(dumped, key=lambda k: Stages(dumped[k]["stage"]))
    return {k: TransformRegistry.get_config_class(k)(**dumped[k]) for k in ordered}


class InferenceOptimizerCore:
    def __init__(self, factory, config: Mapping[str, Any]):
        self.factory = factory
        self.config = clean_config(config)

    def call_transform(self, transform, mod, cm, shared_config, idx):
        raise NotImplementedError

    def __call__(self, cm, mod=None):
        shared_config = SharedConfig()
        for idx, (name, config) in enumerate(self.config.items()):
            mod = self.call_transform(TransformRegistry.get(name)(config), mod, cm, shared_config, idx)
        return mod
