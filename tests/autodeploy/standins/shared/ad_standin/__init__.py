"""Pieces of the AutoDeploy stand-ins (``tests/autodeploy/standins/<generation>/tensorrt_llm``) that are the
same in every supported generation, written from the upstream revisions each module names. Test code only:
NOT TensorRT-LLM."""
