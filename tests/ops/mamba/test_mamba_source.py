"""Source op and the chunked SSD against the token-loop reference; the Triton chunk scan on the CPU."""
import pytest
import torch
from mamba_cases import DT_MAX, DT_MIN, random_params, random_tokens

import trtllm_flash.ops.mamba  # noqa: F401  (registers the ops)
from trtllm_flash.ops.mamba import ssd_chunked, ssm_reference
from trtllm_flash.ops.mamba.source import ssm_fast


@pytest.mark.parametrize("chunk_size", [1, 8, 36, 37, 38, 128])
def test_chunked_matches_token_loop(chunk_size):
    """T = 37 with chunks dividing it, not dividing it, and chunk = T - 1, T, T + 1; nonzero initial state."""
    tokens = random_tokens(2, 37, seed=1)
    params = random_params(seed=1)
    initial = torch.randn(2, 4, 12, 10)
    y_ref, s_ref = ssm_reference(*tokens[:2], params[0], *tokens[2:], *params[1:], DT_MIN, DT_MAX, initial)
    y, s = ssd_chunked(*tokens[:2], params[0], *tokens[2:], *params[1:], DT_MIN, DT_MAX, chunk_size, initial)
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", ["eager", "triton"])
def test_dt_limits_are_applied(impl):
    """A finite dt_max changes the result exactly as the reference says."""
    x, dt, B, C = random_tokens(1, 9, seed=2)
    A, D, dt_bias = random_params(seed=2)
    dt = dt + 3.0  # softplus well above the limit
    y_ref, _ = ssm_reference(x, dt, A, B, C, D, dt_bias, 0.5, 1.0)
    y_free, _ = ssm_reference(x, dt, A, B, C, D, dt_bias, 0.0, float("inf"))
    fn = torch.ops.trtllm_flash.ssm if impl == "eager" else ssm_fast
    y = fn(x, dt, A, B, C, D, dt_bias, 0.5, 1.0, 4)
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    assert (y - y_free).abs().max() > 1e-2


def test_the_shared_dt_limits_bite():
    """Every Mamba test runs with DT_MIN / DT_MAX: both must clamp some of the cases' values."""
    _, dt, _, _ = random_tokens(2, 70, seed=3)
    _, _, dt_bias = random_params(seed=3)
    soft = torch.nn.functional.softplus(dt + dt_bias)
    assert (soft < DT_MIN).float().mean() > 0.05 and (soft > DT_MAX).float().mean() > 0.05


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("impl", ["eager", "triton"])
def test_source_op_matches_reference(impl, dtype, tol):
    """b = 2 rows of T = 70 (two 64-token kernel chunks, the second partial)."""
    x, dt, B, C = random_tokens(2, 70, dtype=dtype, seed=3)
    A, D, dt_bias = random_params(seed=3)
    fn = torch.ops.trtllm_flash.ssm if impl == "eager" else ssm_fast
    y = fn(x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX, 16)
    y_ref, _ = ssm_reference(x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX)
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y.float(), y_ref.float(), atol=tol, rtol=tol)


def test_source_op_fake_shapes():
    x, dt, B, C = (t.to("meta") for t in random_tokens(1, 5))
    A, D, dt_bias = (t.to("meta") for t in random_params())
    y = torch.ops.trtllm_flash.ssm(x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX, 128)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize(
    "mutate, name",
    [
        (lambda a: a.update(x=a["x"][0]), "x"),
        (lambda a: a.update(dt=a["dt"][..., :3]), "dt"),
        (lambda a: a.update(B=torch.randn(1, 5, 3, 10)), "B"),
        (lambda a: a.update(C=a["C"][..., :7]), "C"),
        (lambda a: a.update(A=a["A"][:2]), "A"),
        (lambda a: a.update(D=a["D"].long()), "D"),
        (lambda a: a.update(dt_max=-1.0), "dt_max"),
        (lambda a: a.update(chunk_size=0), "chunk_size"),
    ],
)
def test_bad_source_input_raises(mutate, name):
    x, dt, B, C = random_tokens(1, 5)
    A, D, dt_bias = random_params()
    args = dict(x=x, dt=dt, A=A, B=B, C=C, D=D, dt_bias=dt_bias, dt_min=DT_MIN, dt_max=DT_MAX, chunk_size=4)
    mutate(args)
    with pytest.raises(ValueError, match=name):
        torch.ops.trtllm_flash.ssm(**args)
