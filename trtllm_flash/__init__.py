"""trtllm-flash: Nemotron-Flash hybrid models (DeltaNet + Mamba2 + attention) for TensorRT-LLM AutoDeploy.

Two faces over one core: the AutoDeploy adapter (:mod:`trtllm_flash.autodeploy`, active only where
``tensorrt_llm`` imports) and a standalone path (export -> transforms -> runtime) driven by
``examples/auto_deploy/build_and_run_ad.py``.
"""
__version__ = "0.1.0"
