"""The per-step host inputs: :func:`metadata_arrays` (numpy) and :class:`HostToDeviceStager`."""
import numpy as np
import pytest
import torch

from trtllm_flash.ops.metadata import build_metadata, metadata_arrays
from trtllm_flash.runtime.staging import HostToDeviceStager

DTYPES = {
    "batch_info_host": np.int32,
    "cu_seqlen": np.int32,
    "input_pos": np.int32,
    "slot_idx": np.int64,
    "use_initial_states": np.bool_,
    "page_table": np.int32,
}


def test_metadata_arrays_values_and_dtypes():
    # a 3-token prompt, a 2-token chunk continuing a prefix, then two decodes
    m = metadata_arrays([3, 2, 1, 1], [0, 5, 7, 9], [2, 0, 3, 1], [[4], [1, 2], [5, 6, 7], []])
    assert {name: a.dtype for name, a in m.items()} == {name: np.dtype(d) for name, d in DTYPES.items()}
    assert m["batch_info_host"].tolist() == [2, 5, 2]
    assert m["cu_seqlen"].tolist() == [0, 3, 5, 6, 7]
    assert m["input_pos"].tolist() == [0, 5, 7, 9]
    assert m["slot_idx"].tolist() == [2, 0, 3, 1]
    assert m["use_initial_states"].tolist() == [False, True, True, True]
    assert m["page_table"].tolist() == [[4, 0, 0], [1, 2, 0], [5, 6, 7], [0, 0, 0]]


def test_metadata_arrays_decode_before_prefill_is_a_prefill_chunk_and_table_defaults_to_width_1():
    m = metadata_arrays([1, 4, 1], [3, 0, 2], [0, 1, 2])
    assert m["batch_info_host"].tolist() == [2, 5, 1]
    assert m["page_table"].tolist() == [[0], [0], [0]]
    assert metadata_arrays([1], [0], [0], [[]])["page_table"].shape == (1, 1)


@pytest.mark.parametrize(
    "args, match",
    [
        (([], [], []), "at least one sequence"),
        (([1, 1], [0], [0, 1]), "one entry per sequence"),
        (([0], [0], [0]), "seq_lens must be >= 1"),
        (([1], [-1], [0]), "input_pos must be >= 0"),
        (([1], [0], [0], [[1], [2]]), "one row per sequence"),
    ],
)
def test_metadata_arrays_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        metadata_arrays(*args)


def test_build_metadata_wraps_metadata_arrays():
    args = ([2, 1], [0, 4], [1, 0], [[3], [1, 2]])
    meta = build_metadata(*args).as_dict()
    for name, a in metadata_arrays(*args).items():
        assert meta[name].device.type == "cpu"
        assert torch.equal(meta[name], torch.from_numpy(a)), name


def step_arrays(step):
    pages = 1000 if step == 2 else 40 * step + 1  # step 2: an 8 KB page table
    arrays = metadata_arrays([3 + step, 1], [0, 9], [1, 0], [[2, 3], list(range(1, pages + 1))])
    arrays["input_ids"] = np.arange(4 + step, dtype=np.int64) * 7
    arrays["odd"] = np.arange(3 + step, dtype=np.int8)  # not a multiple of 16 bytes: the next one realigns
    return arrays


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_stager_packs_one_copy(device):
    """One device buffer holds every array, each at a 16-byte aligned offset, none overlapping; the buffers
    are reused across calls and grow (step 2 needs more than the first 4 KiB)."""
    stager = HostToDeviceStager(device)
    buffers = set()
    for step in range(3):
        arrays = step_arrays(step)
        out = stager.upload(arrays)
        storages = {t.untyped_storage().data_ptr() for t in out.values()}
        assert len(storages) == 1
        base = storages.pop()
        buffers.add(base)
        spans = sorted((t.data_ptr() - base, t.nbytes) for t in out.values())
        assert all(start % 16 == 0 for start, _ in spans)
        assert all(start + size <= following for (start, size), (following, _) in zip(spans, spans[1:]))
        for name, a in arrays.items():
            assert out[name].device.type == device and out[name].dtype == torch.from_numpy(a).dtype
            assert out[name].shape == a.shape and out[name].is_contiguous()
            assert out[name].cpu().numpy().tolist() == a.tolist(), name
    assert len(buffers) == 2  # reused at step 1, regrown at step 2
