"""``examples/auto_deploy/build_and_run_ad.py`` as a new user meets it (issue 17): ``--help`` lists the
options, a prompt the engine refuses is printed with its error and the exit status is 1 (it crashed
with an IndexError), and printed completions have their non-printable characters escaped."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runtime_fakes import FakeBuiltModel, FakeTokenizer, make_args
from trtllm_flash.console import printable
from trtllm_flash.llm import LLM

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "build_and_run_ad.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_and_run_ad_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_the_options(script, capsys):
    assert script.main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--args.<field>", "--args.yaml-extra", "--prompt.batch_size", "--prompt.queries",
                   "--prompt.sp_kwargs", "--benchmark.enabled", "--dry_run", "--help"):
        assert option in text


def test_a_refused_prompt_is_printed_with_its_error_and_exits_1(script, capsys, monkeypatch):
    def toy_llm(**llm_args):
        return LLM.from_parts(FakeBuiltModel(), FakeTokenizer(), make_args(max_seq_len=llm_args["max_seq_len"]))

    monkeypatch.setattr("trtllm_flash.llm.LLM", toy_llm)
    status = script.main(["--model", "tiny", "--args.max_seq_len", "8", "--prompt.batch_size", "2",
                          "--prompt.queries", '["abc", "abcdefghijklmnop"]', "--prompt.sp_kwargs", "{max_tokens: 3}"])
    captured = capsys.readouterr()
    assert status == 1
    assert "[PROMPT 0] abc: " in captured.out and "error" not in captured.out.split("[PROMPT 1]")[0]
    assert "[PROMPT 1] abcdefghijklmnop: error: " in captured.out and "max_seq_len" in captured.out
    assert "1 of 2 prompts failed" in captured.err
    assert "[generate] 1/1 requests finished" in captured.out   # the progress line


def test_printable_escapes_control_characters_only():
    assert printable("ok\n\tnew line é 日本") == "ok\n\tnew line é 日本"
    assert printable("a\x1b[2Jb\x00c\u200bd\x7f") == "a\\x1b[2Jb\\x00c\\u200bd\\x7f"
