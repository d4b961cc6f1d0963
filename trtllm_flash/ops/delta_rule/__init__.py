"""Delta-rule family (DeltaNet): importing it registers ``torch.ops.trtllm_flash.delta_rule``,
``torch.ops.trtllm_flash.cached_delta_rule`` and the ``trtllm_flash_delta_rule`` descriptor."""
from trtllm_flash.ops.delta_rule.cached import cached_delta_rule
from trtllm_flash.ops.delta_rule.descriptor import DeltaRuleDescriptor
from trtllm_flash.ops.delta_rule.reference import delta_rule_reference, delta_rule_step
from trtllm_flash.ops.delta_rule.source import delta_rule

__all__ = ["cached_delta_rule", "DeltaRuleDescriptor", "delta_rule", "delta_rule_reference", "delta_rule_step"]
