"""``python -m trtllm_flash.generate --prompt "The list" --max-new-tokens 16``: prompt + completion from the eager
reference model's cached generation. The default model is the shipped ``nemotron-flash-demo`` (trained: readable
text); the presets (``--model tiny`` ...) are randomly initialised, so their text is noise."""
from __future__ import annotations

import argparse
from typing import List, Optional

import torch

from trtllm_flash.checkpoints import DEFAULT_MODEL
from trtllm_flash.loading import load_model, load_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="shipped checkpoint (default: %(default)s, a small trained model), preset name or checkpoint directory")
    parser.add_argument("--prompt", default="Hello")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Print (and return) the prompt followed by the generated text."""
    args = parse_args(argv)
    model = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device, seed=args.seed).eval()
    tokenizer = load_tokenizer(args.model, model.config)
    prompt_ids = torch.tensor([tokenizer.encode(args.prompt)], device=args.device)
    output = model.generate(prompt_ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, eos_token_id=tokenizer.eos_token_id, seed=args.seed)
    completion = tokenizer.decode(output[0, prompt_ids.shape[1]:].tolist(), skip_special_tokens=True)
    text = args.prompt + completion
    print(text)
    return text


if __name__ == "__main__":
    main()
