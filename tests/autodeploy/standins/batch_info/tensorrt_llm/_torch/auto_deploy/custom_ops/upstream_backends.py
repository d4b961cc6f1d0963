"""STAND-IN: upstream's own ``AttentionRegistry`` names (``ad_standin.upstream_names.UPSTREAM_BACKENDS``),
registered as the real backends do, so tests can check our names never collide with them."""
from ad_standin.upstream_names import UPSTREAM_BACKENDS, register_upstream_backends  # noqa: F401  (upstream names, re-exported)

from .attention_interface import AttentionDescriptor, AttentionRegistry

register_upstream_backends(AttentionDescriptor, AttentionRegistry)
