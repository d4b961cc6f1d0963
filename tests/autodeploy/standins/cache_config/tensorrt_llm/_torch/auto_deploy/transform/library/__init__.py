"""STAND-IN of ``AD/transform/library/``: placeholders for upstream's keys (``..upstream_transforms``), then the
transforms mirrored in full (cache insertion, ``gather_logits_before_lm_head``)."""
from .. import upstream_transforms  # noqa: F401  (placeholders first: the mirrored ones replace theirs)
from . import kvcache  # noqa: F401
