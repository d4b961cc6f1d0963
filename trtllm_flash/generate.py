"""``python -m trtllm_flash.generate --prompt "The list" --max-new-tokens 16``: prompt + completion from the eager
reference model's cached generation. The default model is the shipped ``nemotron-flash-demo`` (trained: readable
text); the presets (``--model tiny`` ...) are randomly initialised, so their text is noise."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import torch

from trtllm_flash.checkpoints import DEFAULT_MODEL
from trtllm_flash.console import printable
from trtllm_flash.loading import load_model, load_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m trtllm_flash.generate",
        description="Print a prompt and its completion by the eager reference model (no runtime, no server). "
                    "The default model is trained (readable text); presets are randomly initialised, so their "
                    "text is noise; non-printable characters are printed escaped.")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="the shipped trained model, a preset name or a checkpoint directory (default: %(default)s)")
    parser.add_argument("--prompt", default="Hello", help="the prompt text (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens to generate at most (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens, 0 = all (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, 1 = all (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the preset's weights and the sampling (default: %(default)s)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="weights' dtype (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Print (non-printable characters escaped) and return the prompt followed by the generated text."""
    args = parse_args(argv)
    model = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device, seed=args.seed).eval()
    tokenizer = load_tokenizer(args.model, model.config)
    prompt_ids = torch.tensor([tokenizer.encode(args.prompt)], device=args.device)
    output = model.generate(prompt_ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, eos_token_id=tokenizer.eos_token_id, seed=args.seed)
    completion = tokenizer.decode(output[0, prompt_ids.shape[1]:].tolist(), skip_special_tokens=True)
    text = args.prompt + completion
    print(printable(text))
    return text


def cli(argv: Optional[List[str]] = None) -> int:
    """``main`` with a bad ``--model`` (or checkpoint) reported as one ``error:`` line on stderr, exit status 2."""
    try:
        main(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
