"""One published-layout checkpoint directory per test session (tests must not modify it: copy it first)."""
import pytest

from published import tiny_published_model, write_published_checkpoint


@pytest.fixture(scope="session")
def published_model():
    return tiny_published_model(seed=7)


@pytest.fixture(scope="session")
def published_dir(tmp_path_factory, published_model):
    return write_published_checkpoint(tmp_path_factory.mktemp("Nemotron-Flash-3B-Instruct-tiny"), published_model)
