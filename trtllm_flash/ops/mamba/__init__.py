"""Mamba2 SSM family: importing it registers ``torch.ops.trtllm_flash.ssm``,
``torch.ops.trtllm_flash.cached_ssm`` and the ``trtllm_flash_ssm`` descriptor."""
from trtllm_flash.ops.mamba.cached import cached_ssm
from trtllm_flash.ops.mamba.chunked import ssd_chunked
from trtllm_flash.ops.mamba.descriptor import SSMDescriptor
from trtllm_flash.ops.mamba.reference import ssm_reference, ssm_step
from trtllm_flash.ops.mamba.source import ssm

__all__ = ["cached_ssm", "ssd_chunked", "SSMDescriptor", "ssm", "ssm_reference", "ssm_step"]
