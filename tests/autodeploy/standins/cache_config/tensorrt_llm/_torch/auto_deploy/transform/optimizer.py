"""STAND-IN of ``AD/transform/optimizer.py`` (``CacheConfig`` generation): see ``ad_standin.optimizer_core``;
a transform is called as ``transform(gm, cm, factory, shared_config)`` (commit 01f08360's ``__call__``)."""
from ad_standin.optimizer_core import InferenceOptimizerCore


class InferenceOptimizer(InferenceOptimizerCore):
    def call_transform(self, transform, mod, cm, shared_config, idx):
        return transform(mod, cm, self.factory, shared_config)
