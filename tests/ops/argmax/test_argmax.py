"""argmax: the split-row Triton kernel (interpreted on the CPU, with small splits / blocks so a row spans
several programs and the last-program merge runs) against torch.argmax index for index, op registration
(fake / schema), bad input, and on the GPU the decode shapes and CUDA-graph replay."""
import pytest
import torch

import trtllm_flash.ops.argmax  # noqa: F401  (registers the op)
from trtllm_flash.ops.argmax import argmax_rows, kernels

NAN, INF = float("nan"), float("inf")


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_argmax(logits, **launch):
    """The kernel equals torch.argmax exactly and leaves every row counter at zero for the next call."""
    out = kernels.argmax_triton(logits, **launch)
    assert out.dtype == torch.int64 and out.shape == (logits.shape[0],)
    assert out.tolist() == torch.argmax(logits, dim=-1).tolist()
    assert all(int(counter.abs().sum()) == 0 for _, counter in kernels._WORKSPACES.values())


# (splits, block) -> programs per row for V = 37: (4, 4) -> 4 chunks of 12 (3 loops, last one ragged);
# (8, 2) -> 8 chunks of 6 (the last 1 column); (64, 1024) -> one program, one masked block
LAUNCHES = [pytest.param(dict(splits=4, block=4), id="4x4"), pytest.param(dict(splits=8, block=2), id="8x2"), pytest.param({}, id="default")]


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("n, vocab", [(1, 37), (5, 37), (3, 64), (2, 1), (1, 2)])
def test_kernel_on_random_rows(launch, n, vocab):
    assert_argmax(randn(n, vocab, seed=n * vocab), **launch)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_ties_across_chunks_take_the_first_index(launch):
    logits = randn(4, 37)
    logits[0, [3, 20, 36]] = 9.0  # tie in the first, a middle and the last chunk
    logits[1, [30, 35]] = 9.0  # both in late chunks
    logits[2] = 1.5  # the whole row ties: index 0
    logits[3, [0, 1]] = torch.tensor([-0.0, 9.0])
    logits[3, [12, 17]] = 9.0
    assert_argmax(logits, **launch)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_max_in_the_last_ragged_chunk(launch):
    logits = randn(3, 37)
    logits[0, 36] = 50.0
    logits[1, 33] = 50.0
    logits[2, 0] = 50.0
    assert_argmax(logits, **launch)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_special_values(launch):
    """-inf rows give 0 (all tie); -0.0 ties with +0.0; a NaN is above +inf and the first NaN wins (torch's rule)."""
    rows = [
        [-INF] * 9,
        [-INF] * 8 + [-1e30],
        [-0.0, 0.0, -1.0, -INF, 0.0, -0.0, -2.0, -0.0, -3.0],
        [-1.0, -0.0, 0.0, -5.0, -0.0, -1.0, -3.0, -INF, -2.0],
        [1.0, INF, 2.0, NAN, INF, -NAN, 3.0, 0.0, 1.0],
        [1.0, INF, 2.0, 0.0, INF, 5.0, 3.0, 0.0, 1.0],
        [1.0, 2.0, 3.0, 0.0, -NAN, 5.0, NAN, 0.0, 1.0],
    ]
    assert_argmax(torch.tensor(rows), **launch)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_logits(dtype):
    logits = randn(3, 37).to(dtype)
    logits[0, [5, 25]] = 7.0
    assert_argmax(logits, splits=4, block=4)


def test_repeated_calls_reuse_the_workspace():
    """One workspace per (device, rows rounded up to a power of two, splits), its counters reset in the kernel:
    later calls with other values, other row counts of the same capacity, and another V all see fresh counters."""
    for seed, (n, vocab) in enumerate([(3, 37), (3, 37), (4, 37), (3, 50), (3, 37)]):
        assert_argmax(randn(n, vocab, seed=seed), splits=8, block=2)
    assert sum(key[1:] == (4, 8) for key in kernels._WORKSPACES) == 1
    workspace, counter = kernels._WORKSPACES[(torch.device("cpu"), 4, 8)]
    assert workspace.shape == (4, 8) and counter.shape == (4,)


def test_kernel_on_strided_rows_and_no_rows():
    wide = randn(3, 60)
    assert_argmax(wide[:, 10:47], splits=4, block=4)  # row stride 60
    assert_argmax(wide.t().contiguous().t()[:, :37], splits=4, block=4)  # column stride 3: copied
    assert kernels.argmax_triton(torch.empty(0, 37)).shape == (0,)


def test_op_on_cpu_is_torch_argmax():
    logits = randn(6, 100)
    logits[2, [10, 90]] = 5.0
    out = torch.ops.trtllm_flash.argmax(logits)
    assert out.dtype == torch.int64 and torch.equal(out, torch.argmax(logits, dim=-1))


def test_argmax_rows_is_the_op_without_dispatch():
    logits = randn(4, 90)
    logits[1, [3, 80]] = 7.0
    assert torch.equal(argmax_rows(logits), torch.ops.trtllm_flash.argmax(logits))
    with pytest.raises(ValueError, match="2-D"):
        argmax_rows(randn(90))


@pytest.mark.parametrize("logits", [pytest.param(randn(3, 37), id="fp32"), pytest.param(randn(1, 5).bfloat16(), id="bf16"), pytest.param(randn(4, 70)[:, 3:40], id="strided")])
def test_op_fake_and_schema(logits):
    torch.library.opcheck(torch.ops.trtllm_flash.argmax.default, (logits,))


def test_fake_shape_under_fake_tensors():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = torch.ops.trtllm_flash.argmax(torch.empty(7, 131072))
    assert out.shape == (7,) and out.dtype == torch.int64


@pytest.mark.parametrize(
    "logits, message",
    [
        pytest.param(randn(37), "2-D", id="1-dim"),
        pytest.param(randn(2, 3, 37), "2-D", id="3-dim"),
        pytest.param(randn(3, 0), "V >= 1", id="empty-rows"),
        pytest.param(torch.ones(3, 37, dtype=torch.int64), "float32, bfloat16 or float16", id="int64"),
        pytest.param(randn(3, 37).double(), "float32, bfloat16 or float16", id="float64"),
    ],
)
def test_op_rejects_bad_input(logits, message):
    with pytest.raises(ValueError, match=message):
        torch.ops.trtllm_flash.argmax(logits)


def decode_logits(n, vocab, seed):
    """fp32 logits rounded through bf16 (ties are common), every row's max repeated at 3 random columns and
    row 0's at both sides of the 2048-column chunk boundary and in the last column (2047 must win)."""
    logits = (3 * randn(n, vocab, seed=seed)).bfloat16().float()
    top = logits.max(dim=-1, keepdim=True).values + 1.0
    cols = torch.randint(vocab, (n, 3), generator=torch.Generator().manual_seed(seed))
    logits.scatter_(1, cols, top.expand(n, 3))
    logits[0, [vocab - 1, 2048, 2047]] = top[0, 0] + 1.0
    return logits.cuda()


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1, 3, 384])
@pytest.mark.parametrize("vocab", [131072, 65536 + 37])
def test_cuda_op_at_decode_shapes(n, vocab):
    for seed in range(3):
        logits = decode_logits(n, vocab, seed)
        out = torch.ops.trtllm_flash.argmax(logits)
        assert out.dtype == torch.int64 and out.device == logits.device
        assert torch.equal(out, torch.argmax(logits, dim=-1))


@pytest.mark.gpu
def test_cuda_graph_replay():
    n, vocab = 3, 131072
    static_logits = decode_logits(n, vocab, seed=0)
    torch.ops.trtllm_flash.argmax(static_logits)  # compiles the kernel and makes the workspace before capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = torch.ops.trtllm_flash.argmax(static_logits)
    for seed in (1, 2, 3):
        logits = decode_logits(n, vocab, seed)
        static_logits.copy_(logits)
        graph.replay()
        assert torch.equal(static_out, torch.argmax(logits, dim=-1))
