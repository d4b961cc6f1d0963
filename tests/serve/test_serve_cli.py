"""``trtllm-flash serve`` start-up errors: one line on stderr, exit status 2, and a port in use is
reported before the model is built (issue 17)."""
from __future__ import annotations

import socket

import pytest

from trtllm_flash.cli import main


@pytest.fixture()
def taken_port():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trtllm-flash serve: error: "), captured.err
    assert "[build]" not in captured.out + captured.err
    return lines[0]


def test_port_in_use_is_reported_before_the_build(capsys, taken_port):
    assert "Address already in use" in _one_line_error(capsys, ["serve", "tiny", "--port", str(taken_port)])


@pytest.mark.parametrize("flags, words", [
    (["--port", "99999"], "0 to 65535"),
    (["--port", "0", "--max_seq_len", "0"], "max_seq_len"),
    (["--port", "0", "--extra_llm_api_options", "missing.yaml"], "no such YAML file"),
])
def test_bad_flags_are_one_line(capsys, flags, words):
    assert words in _one_line_error(capsys, ["serve", "tiny", *flags])


def test_misspelt_yaml_key_and_unknown_preset_are_one_line(capsys, tmp_path):
    yaml_path = tmp_path / "bad.yaml"
    yaml_path.write_text("max_batch_sise: 4\n")
    line = _one_line_error(capsys, ["serve", "tiny", "--port", "0", "--extra_llm_api_options", str(yaml_path)])
    assert "did you mean 'max_batch_size'" in line
    assert "neither a preset" in _one_line_error(capsys, ["serve", "nemotron-flash-9b", "--port", "0"])


def test_help_lists_every_option_with_a_line(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--host", "--port", "--extra_llm_api_options", "--max_batch_size", "--max_num_tokens",
                 "--max_seq_len", "--max_waiting_requests", "--max_body_bytes", "--log_level", "--backend",
                 "--trust_remote_code"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "``" not in capsys.readouterr().out


def test_ctrl_c_after_the_graceful_shutdown_exits_130_without_a_traceback(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt   # what uvicorn re-raises once it has shut down on SIGINT

    monkeypatch.setattr("trtllm_flash.serve.server.run_server", interrupted)
    assert main(["serve", "tiny"]) == 130
    assert capsys.readouterr().err == ""
