"""One published-layout checkpoint directory per test session (tests must not modify it: copy it first).

``published`` is imported inside the fixtures: a conftest that imports ``trtllm_flash.modeling`` at collection
start makes fla's interpreted Triton kernels fail later in the same session (tests/model/test_model_crosscheck)."""
import pytest


@pytest.fixture(scope="session")
def published_model():
    from published import tiny_published_model

    return tiny_published_model(seed=7)


@pytest.fixture(scope="session")
def published_dir(tmp_path_factory, published_model):
    from published import write_published_checkpoint

    return write_published_checkpoint(tmp_path_factory.mktemp("Nemotron-Flash-3B-Instruct-tiny"), published_model)
