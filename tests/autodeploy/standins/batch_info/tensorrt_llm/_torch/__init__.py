"""STAND-IN of ``tensorrt_llm/_torch`` (package marker)."""
