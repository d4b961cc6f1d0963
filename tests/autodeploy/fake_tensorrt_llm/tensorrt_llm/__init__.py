"""STAND-IN, NOT TensorRT-LLM. A minimal copy of the API surface trtllm-flash's AutoDeploy adapter
touches, written from the pinned upstream source (tensorrt-llm 1.2.1, "RH-3" descriptor generation)
so the adapter's contract tests run where TensorRT-LLM cannot be installed. Put on ``sys.path`` only by
``tests/autodeploy/conftest.py`` fixtures. Each module names the upstream file and revision it mirrors.
"""
__version__ = "1.2.1+trtllm-flash-stand-in"
