"""The CUDA-graph runner's static decode inputs: one fill kernel (interpreted here) writes every live row
of every input the graph reads, leaves padded rows as sentinels, and resets rows a larger batch left live."""
import torch

from trtllm_flash.ops.interface import SENTINEL_PAGE
from trtllm_flash.runtime.cuda_graph import _StaticBatch

SENTINEL_SLOT = 9


def decode_inputs(n, width, offset=0):
    rows = torch.arange(n)
    return {
        "input_ids": (100 + offset + rows).reshape(1, n),
        "position_ids": (50 + offset + rows).reshape(1, n),
        "input_pos": (50 + offset + rows).to(torch.int32),
        "slot_idx": rows + offset,
        "use_initial_states": torch.ones(n, dtype=torch.bool),
        "gather_idx": rows,
        "page_table": (1 + offset + torch.arange(n * width, dtype=torch.int32)).reshape(n, width),
    }


def test_fill_writes_live_rows_and_keeps_sentinel_rows():
    static = _StaticBatch(max_size=4, max_pages=6, sentinel_slot=SENTINEL_SLOT, device=torch.device("cpu"))
    inputs = decode_inputs(3, width=2)
    static.fill(3, inputs)
    assert static.tokens[0, :3].tolist() == [100, 101, 102] and static.tokens[0, 3] == 0
    assert static.positions[0, :3].tolist() == [50, 51, 52]
    assert static.input_pos[:3].tolist() == [50, 51, 52] and static.input_pos.dtype == torch.int32
    assert static.slot_idx.tolist() == [0, 1, 2, SENTINEL_SLOT]
    assert static.use_initial_states.tolist() == [True, True, True, False]
    assert torch.equal(static.page_table[:3, :2], inputs["page_table"])
    assert (static.page_table[:3, 2:] == SENTINEL_PAGE).all() and (static.page_table[3] == SENTINEL_PAGE).all()

    smaller = decode_inputs(1, width=3, offset=7)
    static.fill(1, smaller)  # rows 1 and 2 were live: back to sentinels
    assert static.tokens[0].tolist() == [107, 0, 0, 0]
    assert static.slot_idx.tolist() == [7, SENTINEL_SLOT, SENTINEL_SLOT, SENTINEL_SLOT]
    assert static.use_initial_states.tolist() == [True, False, False, False]
    assert static.page_table[0, :3].tolist() == [8, 9, 10] and (static.page_table[1:] == SENTINEL_PAGE).all()


def test_inputs_the_graph_does_not_read_are_left_alone():
    static = _StaticBatch(max_size=2, max_pages=4, sentinel_slot=SENTINEL_SLOT, device=torch.device("cpu"))
    inputs = {k: v for k, v in decode_inputs(2, width=4).items() if k in ("input_ids", "position_ids", "slot_idx")}
    static.fill(2, inputs)
    assert static.tokens[0].tolist() == [100, 101] and static.slot_idx.tolist() == [0, 1]
    assert static.input_pos.tolist() == [0, 0] and (static.page_table == SENTINEL_PAGE).all()
    assert static.gather_idx.tolist() == [0, 1]  # its initial arange
