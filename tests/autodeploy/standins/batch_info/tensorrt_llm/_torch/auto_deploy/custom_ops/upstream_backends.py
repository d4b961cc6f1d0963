"""STAND-IN: upstream's own ``AttentionRegistry`` names, registered as the real backends do
(``AD/custom_ops/fla/fla_backend_delta.py`` "fla_delta", ``AD/custom_ops/mamba/triton_backend_mamba.py``
"triton_ssm", ``AD/custom_ops/mamba/cuda_backend_causal_conv.py`` "cuda_causal_conv",
``AD/custom_ops/attention/{flashinfer_attention,torch_backend_attention,triton_paged_attention,trtllm_attention}.py``
"flashinfer" / "torch" / "triton_paged" / "trtllm"), so tests can check our names never collide with them."""
from .attention_interface import AttentionDescriptor, AttentionRegistry

UPSTREAM_BACKENDS = ("fla_delta", "triton_ssm", "cuda_causal_conv", "flashinfer", "torch", "triton_paged", "trtllm")

for _name in UPSTREAM_BACKENDS:
    AttentionRegistry.register(_name)(type(f"Upstream_{_name}", (AttentionDescriptor,), {}))
