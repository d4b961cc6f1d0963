"""The ``trtllm-flash`` console script.

``trtllm-flash serve <model> [--host 127.0.0.1] [--port 8000] [--extra_llm_api_options nemotron_flash.yaml]
[--max_batch_size N] [--max_num_tokens N] [--max_seq_len N] [--max_waiting_requests N]`` serves the
OpenAI-compatible API from the standalone runtime. Flag names are trtllm-serve's where it has them;
``--backend _autodeploy`` and ``--trust_remote_code`` are accepted so the model card's
``trtllm-serve serve ...`` command line works unchanged with ``trtllm-flash serve``.

A start-up error (unknown model or YAML key, bad value, port in use) is one line on stderr and exit
status 2; the port is bound before the model is built, so a taken port is reported at once.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

DESCRIPTION = "trtllm-flash: serve Nemotron-Flash models over an OpenAI-compatible API (standalone runtime)."


def _add_serve_parser(subcommands: argparse._SubParsersAction) -> None:
    serve = subcommands.add_parser(
        "serve", help="serve a model over the OpenAI API (chat + completions, streaming)",
        description="Serve MODEL (a preset name, a checkpoint directory or a Hugging Face id) over an "
                    "OpenAI-compatible HTTP API, on the standalone runtime.")
    serve.add_argument("model", help="nemotron-flash-demo (the shipped trained model), a preset (tiny, nemotron-flash-1b, ...), "
                                      "a checkpoint directory or HF id")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind, 0 = any free port (default: %(default)s)")
    serve.add_argument("--extra_llm_api_options", action="append", default=[], metavar="YAML",
                       help="LLM-args YAML (e.g. examples/auto_deploy/nemotron_flash.yaml); repeat to layer files")
    serve.add_argument("--max_batch_size", type=int, help="requests run at once (overrides the YAML)")
    serve.add_argument("--max_num_tokens", type=int, help="tokens per engine step (overrides the YAML)")
    serve.add_argument("--max_seq_len", type=int, help="prompt + answer tokens per request (overrides the YAML)")
    serve.add_argument("--max_waiting_requests", type=int, default=256,
                       help="requests accepted beyond max_batch_size before answering 429 (default: %(default)s)")
    serve.add_argument("--max_body_bytes", type=int, default=4 * 1024 * 1024,
                       help="largest request body; a larger one gets 413 (default: %(default)s)")
    serve.add_argument("--log_level", default="info", choices=["debug", "info", "warning", "error"],
                       help="server log level; the build progress is logged at info (default: %(default)s)")
    serve.add_argument("--backend", default="_autodeploy", choices=["_autodeploy"],
                       help="accepted for trtllm-serve compatibility; the standalone runtime serves")
    serve.add_argument("--trust_remote_code", action="store_true",
                       help="accepted for trtllm-serve compatibility (the model code is built in)")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from .serve.server import run_server

    overrides = {name: getattr(args, name) for name in ("max_batch_size", "max_num_tokens", "max_seq_len")
                 if getattr(args, name) is not None}
    try:
        run_server(args.model, yaml_paths=args.extra_llm_api_options, overrides=overrides, host=args.host,
                   port=args.port, max_waiting_requests=args.max_waiting_requests, log_level=args.log_level,
                   max_body_bytes=args.max_body_bytes)
    except KeyboardInterrupt:   # Ctrl-C: uvicorn has shut down gracefully and re-raised the signal
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trtllm-flash", description=DESCRIPTION)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(subcommands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``trtllm-flash`` console script: a start-up error is one line, exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, FileNotFoundError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"trtllm-flash {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
