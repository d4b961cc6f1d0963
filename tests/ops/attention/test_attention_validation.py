"""Bad input to the cached op's eager path -> ValueError naming the argument; the fake passes opcheck."""
import pytest
import torch
from attention_cases import D, H, SCALE, histories, paged_cache, ring_cache, step_metadata

SPANS = [(0, 5), (4, 1)]


def good_args(window=0):
    hist = histories([5, 5])
    q, k, v = (torch.cat([h[j][p : p + n] for h, (p, n) in zip(hist, SPANS)])[None] for j in range(3))
    m = step_metadata(SPANS, [1, 0], [[3, 4], [5, 6]])
    cache = paged_cache(8, 4, fill=0.0) if window == 0 else ring_cache(2, window, 4, fill=0.0)
    return dict(
        q=q, k=k, v=v, batch_info_host=m.batch_info_host, cu_seqlen=m.cu_seqlen, input_pos=m.input_pos,
        slot_idx=m.slot_idx, page_table=m.page_table, kv_cache=cache, scale=SCALE, sliding_window=window,
    )


def call(args):
    return torch.ops.trtllm_flash.cached_attention(**args)


def test_good_args_run():
    assert call(good_args()).shape == (1, 6, H, D)


CASES = [
    ("k", lambda a: a["k"][..., :3], "k must be"),
    ("k", lambda a: a["k"].bfloat16(), "k must have q's dtype"),
    ("kv_cache", lambda a: a["kv_cache"][:, :1], "kv_cache must be"),
    ("kv_cache", lambda a: a["kv_cache"][:, :, :1], "kv_cache must be"),
    ("kv_cache", lambda a: a["kv_cache"].double(), "kv_cache must have k's dtype"),
    ("batch_info_host", lambda a: torch.tensor([1, 5, 2], dtype=torch.int32), "batch_info_host"),
    ("batch_info_host", lambda a: torch.tensor([1, 5, 1, 0], dtype=torch.int32), "batch_info_host must be a CPU tensor of 3 ints"),
    ("cu_seqlen", lambda a: torch.tensor([0, 4, 6], dtype=torch.int32), "cu_seqlen"),
    ("cu_seqlen", lambda a: a["cu_seqlen"].float(), "cu_seqlen must be a 1-D int"),
    ("input_pos", lambda a: torch.tensor([0, -1], dtype=torch.int32), "input_pos needs 2 non-negative"),
    ("page_table", lambda a: torch.tensor([[3, 4], [5, 8]], dtype=torch.int32), "page_table names pages"),
    ("page_table", lambda a: torch.tensor([[3], [5]], dtype=torch.int32), "page_table has 1 columns"),
    ("page_table", lambda a: a["page_table"][0], "page_table must be a 2-D"),
    ("scale", lambda a: 0.0, "scale must be"),
]


@pytest.mark.parametrize("name, bad, match", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_names_the_argument(name, bad, match):
    args = good_args()
    args[name] = bad(args)
    with pytest.raises(ValueError, match=match):
        call(args)


def test_unflattened_batch_is_refused():
    args = good_args()
    for name in ("q", "k", "v"):
        args[name] = args[name].reshape(2, 3, *args[name].shape[2:])
    with pytest.raises(ValueError, match="q must be a flattened batch"):
        call(args)


def test_slot_out_of_range_of_the_ring():
    args = good_args(window=3)
    args["slot_idx"] = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="slot_idx"):
        call(args)


def test_ring_cache_must_hold_whole_rings():
    args = good_args(window=3)
    args["kv_cache"] = args["kv_cache"][:-1]
    with pytest.raises(ValueError, match="kv_cache of a sliding-window layer must hold whole rings"):
        call(args)


def test_fake_mutation_and_schema_pass_opcheck():
    args = good_args()
    torch.library.opcheck(torch.ops.trtllm_flash.cached_attention.default, tuple(args.values()))
