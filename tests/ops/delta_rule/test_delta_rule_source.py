"""Source op ``delta_rule`` and the token-loop reference, held against fla's own implementations."""
import pytest
import torch
from delta_rule_cases import random_inputs

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)
from trtllm_flash.ops.delta_rule import delta_rule_reference


def test_reference_matches_fla_naive_recurrence():
    """Convention check: fla's naive recurrence uses layout [b, h, s, d] and scale dk**-0.5."""
    from fla.ops.delta_rule.naive import delta_rule_recurrence

    q, k, v, beta = random_inputs(2, 19, 3, 12, 10, seed=1)
    h0 = torch.randn(2, 3, 12, 10)
    o, state = delta_rule_reference(q, k, v, beta, 12**-0.5, initial_state=h0)
    to_bhsd = lambda t: t.transpose(1, 2).contiguous()  # noqa: E731
    o_fla, state_fla = delta_rule_recurrence(to_bhsd(q), to_bhsd(k), to_bhsd(v), beta.transpose(1, 2), h0.clone())
    torch.testing.assert_close(o, o_fla.transpose(1, 2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, state_fla, atol=1e-5, rtol=1e-5)


def test_reference_matches_fla_fused_recurrent_varlen():
    """fla's Triton fused-recurrent kernel (interpreted on the CPU), packed varlen with initial states."""
    from fla.ops.delta_rule import fused_recurrent_delta_rule

    lengths = [5, 1, 7]
    q, k, v, beta = random_inputs(1, sum(lengths), 2, 12, 10, seed=2)
    h0 = torch.randn(3, 2, 12, 10)
    scale = 0.37
    cu = torch.tensor([0, 5, 6, 13])
    o_fla, state_fla = fused_recurrent_delta_rule(
        q, k, v, beta, scale=scale, initial_state=h0, output_final_state=True, cu_seqlens=cu
    )
    for i, (start, end) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        o, state = delta_rule_reference(
            q[:, start:end], k[:, start:end], v[:, start:end], beta[:, start:end], scale, h0[i : i + 1]
        )
        torch.testing.assert_close(o_fla[:, start:end], o, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state_fla[i : i + 1], state, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_source_op_matches_reference(dtype, tol):
    q, k, v, beta = random_inputs(3, 37, 3, 12, 20, dtype=dtype, seed=3)
    o = torch.ops.trtllm_flash.delta_rule(q, k, v, beta, 0.25)
    assert o.shape == v.shape and o.dtype == dtype
    expected, _ = delta_rule_reference(q.float(), k.float(), v.float(), beta.float(), 0.25)
    torch.testing.assert_close(o.float(), expected, atol=tol, rtol=tol)


def test_source_op_sequences_are_independent():
    """Each batch row starts from a zero state: row 1 alone equals row 1 in the batch."""
    q, k, v, beta = random_inputs(2, 9, 2, 8, 8, seed=4)
    o = torch.ops.trtllm_flash.delta_rule(q, k, v, beta, 0.5)
    o1 = torch.ops.trtllm_flash.delta_rule(q[1:], k[1:], v[1:], beta[1:], 0.5)
    torch.testing.assert_close(o[1:], o1, atol=0, rtol=0)


def test_source_op_fake_and_schema():
    torch.library.opcheck(torch.ops.trtllm_flash.delta_rule.default, random_inputs(2, 5, 2, 8, 6, seed=5) + (0.3,))


@pytest.mark.parametrize(
    "change, argument",
    [
        (lambda q, k, v, b: (q[0], k, v, b), "q"),
        (lambda q, k, v, b: (q, k[..., :-1], v, b), "k"),
        (lambda q, k, v, b: (q, k, v[:, :-1], b), "v"),
        (lambda q, k, v, b: (q, k, v, b[..., None]), "beta"),
        (lambda q, k, v, b: (q, k, v.double(), b), "v"),
        (lambda q, k, v, b: (q, k.half(), v, b), "q, k and v"),
        (lambda q, k, v, b: (q, k, v, b.long()), "beta"),
    ],
)
def test_source_op_rejects_bad_input(change, argument):
    args = change(*random_inputs(2, 5, 2, 8, 6, seed=6))
    with pytest.raises(ValueError, match=argument):
        torch.ops.trtllm_flash.delta_rule(*args, 0.3)
