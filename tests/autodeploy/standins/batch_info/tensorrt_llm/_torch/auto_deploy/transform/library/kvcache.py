"""STAND-IN of ``AD/transform/library/kvcache.py`` and ``ssm_cache.py`` for this generation: see
``ad_standin.library_kvcache`` (which names the upstream revisions mirrored)."""
from ad_standin.library_kvcache import make_insert_transforms

from ...custom_ops.attention_interface import AttentionRegistry
from ..interface import BaseTransform, TransformRegistry

InsertCachedAttention, INSERT_TRANSFORMS = make_insert_transforms(BaseTransform, AttentionRegistry, None)
for _key, _cls in INSERT_TRANSFORMS.items():
    TransformRegistry.register(_key)(_cls)
