"""Train the small Nemotron-Flash that ships as the ``nemotron-flash-demo`` preset, on a CPU (minutes on 2 cores).

    python examples/train_demo.py --out /tmp/nemotron-flash-demo          # the shipped run (defaults)
    python examples/train_demo.py --out /tmp/smoke --steps 3 --eval-tokens 512 --vocab-size 320   # smoke test

What it does, reproducibly (fixed seeds; the data slice is recorded in ``training.json``):

1. reads the prose of the Python 3.11 documentation from Debian's ``python3.11-doc`` (``demo_corpus.py``: the
   slice, the cleaning, the held-out documents; PSF License Agreement);
2. trains a byte-level BPE tokenizer (``tokenizers``) on the training documents; ids 0, 1, 2 are
   ``<pad>, <s>, </s>`` and ``</s>`` separates documents;
3. trains the eager reference model (:class:`trtllm_flash.modeling.NemotronFlashForCausalLM`: DeltaNet, Mamba2,
   full and sliding-window attention, FFN layers, memory tokens, the logit row-norm head) with AdamW on
   windows of ``--seq-len`` tokens, each prefixed with the memory tokens as the tokenizer does at inference;
4. reports the held-out perplexity of the trained model beside a unigram model of the training tokens (add-one
   smoothed) and the untrained (seeded random) model, on the same held-out tokens;
5. writes the checkpoint in the published layout (``config.json``, ``model.safetensors`` with a separate
   ``model.memory_tokens`` and no tied ``lm_head``, ``tokenizer.json``) plus ``training.json``, through
   :func:`trtllm_flash.loading.save_checkpoint`, and checks it loads back through ``load_checkpoint``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_corpus  # noqa: E402

from trtllm_flash.config import NemotronFlashConfig  # noqa: E402
from trtllm_flash.loading import load_checkpoint, random_model, save_checkpoint  # noqa: E402
from trtllm_flash.tokenizer import BOS, EOS, PAD, NemotronFlashTokenizer  # noqa: E402

#: the demo architecture: every layer type of Nemotron-Flash at a CPU-trainable size: a DeltaNet-FFN-Mamba2-FFN
#: block then two attention layers with FFNs, layer 4 global and layer 6 with a sliding window (the 3B-TP
#: arrangement). Only two recurrent layers, since the reference's token-by-token scans dominate the step time.
#: ``vocab_size`` comes from ``--vocab-size``.
ARCHITECTURE = dict(
    hidden_size=128,
    intermediate_size=0,
    ffn_expand_ratio=3,
    num_hidden_layers=8,
    layer_types=["deltanet", "f", "m2", "f", "a", "f", "a", "f"],
    num_attention_heads=4,
    num_key_value_heads=2,
    kq_norm="none",
    rope=True,
    rope_theta=10000.0,
    sliding_window=64,
    global_attn_idx=[4],
    mamba_expand=2,
    mamba2_headdim=32,
    mamba_d_state=16,
    mamba_d_conv=4,
    mlp_hidden_act="silu",
    num_memory_tokens=8,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    max_position_embeddings=4096,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    attn_implementation_new="fused_mha",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--sources-dir", default=demo_corpus.SOURCES_DIR, help="the reST sources of python3.11-doc")
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128, help="text tokens per training window (memory tokens extra)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=25)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-tokens", type=int, default=8192, help="held-out tokens scored (from the start)")
    p.add_argument("--eval-len", type=int, default=256, help="held-out window length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: the same numbers on any machine; the many small ops gain little from more)")
    p.add_argument("--log-every", type=int, default=25)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ tokenizer
def train_tokenizer(documents: List[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE with ``<pad>, <s>, </s>`` = 0, 1, 2 and all 256 bytes in the vocabulary."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(documents, trainer=trainer)
    return backend


def token_stream(backend: Tokenizer, documents: List[str]) -> torch.Tensor:
    """All documents' ids, each followed by ``</s>`` (1-D int64)."""
    eos = backend.token_to_id(EOS)
    ids: List[int] = []
    for encoding in backend.encode_batch(documents, add_special_tokens=False):
        ids += encoding.ids + [eos]
    return torch.tensor(ids, dtype=torch.long)


# ------------------------------------------------------------------------------------------------ model / loss
def with_memory(windows: torch.Tensor, memory_ids: torch.Tensor) -> torch.Tensor:
    """``[b, s]`` text ids -> ``[b, n_mem + s]`` with the memory-token prefix the tokenizer adds."""
    return torch.cat([memory_ids.expand(windows.shape[0], -1), windows], dim=1)


def window_nll(model, windows: torch.Tensor, memory_ids: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL of the text tokens of ``windows [b, s]`` (the first predicted from the memory prefix)."""
    n = memory_ids.numel()
    logits = model(with_memory(windows, memory_ids))[:, n - 1 : -1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows.reshape(-1), reduction="sum")


@torch.no_grad()
def model_perplexity(model, held_out: torch.Tensor, memory_ids: torch.Tensor, eval_len: int) -> float:
    """exp(mean NLL) over ``held_out`` cut into windows of ``eval_len`` tokens, each scored from scratch."""
    model.eval()
    windows = held_out[: held_out.numel() // eval_len * eval_len].view(-1, eval_len)
    total = sum(window_nll(model, batch, memory_ids).item() for batch in windows.split(8))
    model.train()
    return math.exp(total / windows.numel())


def unigram_perplexity(train: torch.Tensor, held_out: torch.Tensor, vocab_size: int, eval_len: int) -> float:
    """Add-one smoothed unigram model of the training tokens, scored on the same tokens as the models."""
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    log_probs = counts.log() - counts.sum().log()
    scored = held_out[: held_out.numel() // eval_len * eval_len]
    return math.exp(-log_probs[scored].mean().item())


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up then cosine decay to 10 % of ``--lr``."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def train(model, stream: torch.Tensor, memory_ids: torch.Tensor, args: argparse.Namespace) -> List[Dict[str, float]]:
    """AdamW on random windows of the training stream (seeded); returns the logged losses."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed + 1)
    offsets = torch.arange(args.seq_len)
    log, start, running = [], time.time(), 0.0
    model.train()
    for step in range(args.steps):
        starts = torch.randint(0, stream.numel() - args.seq_len, (args.batch_size,), generator=gen)
        windows = stream[starts[:, None] + offsets]
        loss = window_nll(model, windows, memory_ids) / windows.numel()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        optimizer.step()
        running += loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            count = (step % args.log_every) + 1
            entry = {"step": step + 1, "loss": running / count, "lr": lr_at(step, args),
                     "elapsed_s": round(time.time() - start, 1)}
            log.append(entry)
            running = 0.0
            print(f"step {entry['step']:5d}  loss {entry['loss']:.4f}  lr {entry['lr']:.2e}  {entry['elapsed_s']:.0f}s",
                  flush=True)
    model.eval()
    return log


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()

    corpus = demo_corpus.load_corpus(args.sources_dir)
    backend = train_tokenizer(corpus.train, args.vocab_size)
    vocab_size = backend.get_vocab_size()
    config = NemotronFlashConfig(vocab_size=vocab_size, **ARCHITECTURE)
    tokenizer = NemotronFlashTokenizer(tokenizer_object=backend, num_memory_tokens=config.num_memory_tokens,
                                       vocab_size_model=vocab_size, pad_token=PAD, bos_token=BOS, eos_token=EOS)
    memory_ids = torch.tensor(tokenizer.memory_token_ids, dtype=torch.long)
    train_ids, held_out_ids = token_stream(backend, corpus.train), token_stream(backend, corpus.held_out)
    held_out_ids = held_out_ids[: args.eval_tokens]
    print(f"corpus: {len(corpus.train)} train / {len(corpus.held_out)} held-out documents, "
          f"{train_ids.numel()} / {held_out_ids.numel()} tokens (vocab {vocab_size})", flush=True)

    model = random_model(config, torch.float32, "cpu", seed=args.seed)
    print(f"model: {sum(p.numel() for p in model.parameters())} parameters, layers {config.layer_types}", flush=True)
    untrained = model_perplexity(model, held_out_ids, memory_ids, args.eval_len)
    unigram = unigram_perplexity(train_ids, held_out_ids, vocab_size, args.eval_len)
    print(f"held-out perplexity before training: {untrained:.2f} (unigram baseline {unigram:.2f})", flush=True)

    train_start = time.time()
    log = train(model, train_ids, memory_ids, args)
    train_s = time.time() - train_start
    trained = model_perplexity(model, held_out_ids, memory_ids, args.eval_len)
    print(f"held-out perplexity: trained {trained:.2f}, unigram {unigram:.2f}, untrained {untrained:.2f} "
          f"(training {train_s / 60:.1f} min)", flush=True)

    save_checkpoint(model, args.out, published_config=True)
    tokenizer.save_pretrained(args.out)
    reloaded = load_checkpoint(args.out)
    if model_perplexity(reloaded, held_out_ids[: args.eval_len], memory_ids, args.eval_len) != \
            model_perplexity(model, held_out_ids[: args.eval_len], memory_ids, args.eval_len):
        raise RuntimeError(f"{args.out} does not load back to the trained model")
    report = {
        "data": corpus.record(),
        "tokens": {"train": train_ids.numel(), "held_out_scored": held_out_ids.numel() // args.eval_len * args.eval_len},
        "perplexity": {"trained": trained, "unigram": unigram, "untrained": untrained},
        "training_seconds": round(train_s, 1),
        "total_seconds": round(time.time() - started, 1),
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "sources_dir")},
        "torch": torch.__version__,
        "log": log,
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}", flush=True)
    return report


if __name__ == "__main__":
    main()
