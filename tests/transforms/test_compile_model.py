"""compile_model backends and the CUDA-graph runner (its CPU-checkable parts here; replay on the GPU)."""
import pytest
import torch

from trtllm_flash.export import export_model
from trtllm_flash.runtime.cuda_graph import CudaGraphRunner, check_graph_batch_sizes
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.registry import get_transform

from tiny_models import VOCAB, tiny_delta_lm


def compile_with(gm, ctx, **settings):
    config = merge_transforms({"compile_model": settings})["compile_model"]
    return get_transform("compile_model")(config).apply(gm, ctx)


def test_graph_batch_sizes_are_sorted_largest_first_and_capped_by_max_batch_size():
    assert check_graph_batch_sizes([1, 4, 2, 4], max_batch_size=4) == [4, 2, 1]
    with pytest.raises(ValueError, match=r"\[16\] exceed max_batch_size 8"):
        check_graph_batch_sizes([1, 8, 16], max_batch_size=8)


def test_cudagraph_backend_rejects_a_size_above_max_batch_size():
    gm = export_model(tiny_delta_lm())
    with pytest.raises(ValueError, match="exceed max_batch_size"):
        compile_with(gm, BuildContext(max_batch_size=2), backend="torch-cudagraph", cuda_graph_batch_sizes=[1, 2, 4])


def test_torch_opt_on_the_cpu_is_a_graph_runner_over_the_eager_module():
    gm = export_model(tiny_delta_lm())
    ctx = BuildContext(max_batch_size=2)
    compile_with(gm, ctx, backend="torch-opt", cuda_graph_batch_sizes=[1, 2])
    assert isinstance(ctx.runner, CudaGraphRunner)
    assert ctx.runner.capture_module is gm  # torch.compile only where graphs are captured (CUDA)


def test_runner_picks_the_smallest_fitting_graph():
    runner = CudaGraphRunner(lambda **kw: None, [], [8, 1, 2, 4], max_batch_size=8, max_pages_per_seq=4, cache_specs={})
    assert [runner.graph_size_for(n) for n in (1, 3, 5, 8, 9)] == [1, 4, 8, 8, None]


@torch.no_grad()
def test_cudagraph_backend_on_cpu_runs_eagerly_with_the_same_result():
    model = tiny_delta_lm()
    gm = export_model(model)
    ctx = BuildContext(max_batch_size=4)
    gm, _ = compile_with(gm, ctx, backend="torch-cudagraph", cuda_graph_batch_sizes=[1, 2])
    ids = torch.randint(0, VOCAB, (1, 5))
    assert isinstance(ctx.runner, CudaGraphRunner)
    torch.testing.assert_close(ctx.runner(input_ids=ids, position_ids=torch.arange(5)[None]), model(ids, torch.arange(5)[None]))
    assert ctx.runner.captured_sizes == []
