"""A broken checkpoint is refused with one line naming the file and the tensor (no raw SafetensorError, no silent
int -> float conversion, no NaN weights)."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from trtllm_flash.loading import load_checkpoint, load_model

SHARD_1, SHARD_2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"


@pytest.fixture()
def ckpt(published_dir, tmp_path):
    return shutil.copytree(published_dir, tmp_path / "ckpt")


def _shard_of(path, key):
    return json.loads((path / "model.safetensors.index.json").read_text())["weight_map"][key]


def _set_tensor(path, key, value):
    shard = path / _shard_of(path, key)
    weights = load_file(shard)
    weights[key] = value
    save_file(weights, shard)
    return shard


def _message(path):
    with pytest.raises(ValueError) as err:
        load_checkpoint(str(path))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_truncated_shard_names_the_file_and_the_cut_tensor(ckpt):
    data = (ckpt / SHARD_2).read_bytes()
    (ckpt / SHARD_2).write_bytes(data[:-100])
    message = _message(ckpt)
    assert message.startswith(f"{ckpt / SHARD_2} is not a readable safetensors file: truncated: tensor ")
    assert "needs" in message and "data bytes but the file holds" in message


def test_a_corrupt_shard_names_the_file(ckpt):
    data = bytearray((ckpt / SHARD_1).read_bytes())
    data[8:40] = b"\xff" * 32  # garbage in the JSON header
    (ckpt / SHARD_1).write_bytes(bytes(data))
    assert _message(ckpt).startswith(f"{ckpt / SHARD_1} is not a readable safetensors file: Error while deserializing header")


def test_an_empty_shard_names_the_file(ckpt):
    (ckpt / SHARD_1).write_bytes(b"")
    assert _message(ckpt) == f"{ckpt / SHARD_1} is empty (0 bytes): not a safetensors file"


def test_an_index_without_weight_map_names_the_index(ckpt):
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 1}}))
    assert _message(ckpt) == f"{ckpt / 'model.safetensors.index.json'}: no 'weight_map' object naming the shard of each tensor"


def test_a_shard_named_in_the_index_but_missing_names_it(ckpt):
    (ckpt / SHARD_2).unlink()
    assert _message(ckpt) == f"{ckpt / SHARD_2} is missing (named in model.safetensors.index.json)"


def test_an_integer_weight_is_refused_not_converted(ckpt):
    key = "model.layers.2.mamba.A_log"
    shard = _set_tensor(ckpt, key, torch.arange(8, dtype=torch.int32))
    assert _message(ckpt) == (f"{shard}: tensor {key} has dtype int32; weights must be float32, bfloat16 or float16")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_nan_or_inf_weight_names_the_file_and_tensor(ckpt, bad):
    key = "model.layers.4.self_attn.q_proj.weight"
    weights = load_file(ckpt / _shard_of(ckpt, key))
    value = weights[key].clone()
    value[1, 2] = bad
    shard = _set_tensor(ckpt, key, value)
    assert _message(ckpt) == f"{shard}: tensor {key} holds NaN or Inf values"


def test_invalid_json_in_the_index_names_it(ckpt):
    (ckpt / "model.safetensors.index.json").write_text("{not json")
    assert _message(ckpt).startswith(f"{ckpt / 'model.safetensors.index.json'} is not valid JSON: ")


@pytest.mark.parametrize("name", ["/no/such/checkpoint", "./no-such-dir", "relative/deep/no-such-dir"])
def test_a_local_path_that_does_not_exist_says_no_such_directory(name):
    with pytest.raises(ValueError, match=f"^model '{name}': no such directory$"):
        load_model(name)


def test_an_uncached_hub_id_says_no_such_directory_and_not_cached():
    with pytest.raises(ValueError, match="^model 'nvidia/not-a-cached-model': no such directory, and not in the local Hugging Face cache"):
        load_model("nvidia/not-a-cached-model")
