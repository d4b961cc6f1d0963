"""STAND-IN of ``AD/transform/optimizer.py`` (resource-handler generation): see
``ad_standin.optimizer_core``; a transform is called as ``transform(mod, cm, factory, shared_config, idx)``."""
from ad_standin.optimizer_core import InferenceOptimizerCore


class InferenceOptimizer(InferenceOptimizerCore):
    def call_transform(self, transform, mod, cm, shared_config, idx):
        return transform(mod, cm, self.factory, shared_config, idx)
