"""The registry, the config validation and the YAML merge of the pipeline."""
from pathlib import Path

import pytest

from trtllm_flash.transforms import describe_pipeline, merge_transforms
from trtllm_flash.transforms.__main__ import main as transforms_main
from trtllm_flash.transforms.registry import Stage, pipeline_order


def test_default_pipeline_runs_in_autodeploy_stage_order():
    order = [config.stage for _, config in pipeline_order(merge_transforms())]
    assert order == sorted(order)
    names = [name for name, _ in pipeline_order(merge_transforms())]
    assert names[0] == "export_to_gm" and names[-1] == "compile_model"
    assert names.index("fuse_mamba_a_log") < names.index("insert_cached_ssm_attention")


def test_yaml_section_overrides_and_appends_within_stage():
    configs = merge_transforms(
        {"gather_logits_before_lm_head": {"enabled": True}, "fuse_gemms": {"stage": "cache_init"}}
    )
    assert configs["gather_logits_before_lm_head"].enabled is True
    assert configs["fuse_gemms"].stage is Stage.CACHE_INIT
    ordered = [name for name, _ in pipeline_order(configs)]
    assert ordered.index("fuse_gemms") > ordered.index("fuse_add_rms_norm")


def test_unknown_key_is_an_error_naming_the_key_and_the_closest():
    with pytest.raises(ValueError, match=r"transforms.insert_cached_attention: unknown key 'backnd'.*'backend'"):
        merge_transforms({"insert_cached_attention": {"backnd": "x"}})


def test_unknown_transform_names_the_closest():
    with pytest.raises(KeyError, match="fuse_mamba_a_log"):
        merge_transforms({"fuse_mamba_alog": {"stage": "post_load_fusion"}})


def test_bad_value_names_the_field():
    with pytest.raises(ValueError, match=r"compile_model.backend"):
        merge_transforms({"compile_model": {"backend": "tensorrt"}})
    with pytest.raises(ValueError, match=r"fuse_gemms.stage"):
        merge_transforms({"fuse_gemms": {"stage": "later"}})


def test_describe_lists_every_transform_once_with_state():
    lines = describe_pipeline(merge_transforms({"compile_model": {"backend": "torch-cudagraph"}}))
    assert len(lines) == len(merge_transforms())
    assert any("compile_model" in l and "torch-cudagraph" in l for l in lines)
    assert any("gather_logits_before_lm_head" in l and "disabled" in l for l in lines)


def test_cli_list_merges_yaml(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("transforms:\n  gather_logits_before_lm_head:\n    enabled: true\n  fuse_mamba_a_log:\n    stage: post_load_fusion\n")
    assert transforms_main(["--list", "--yaml", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "gather_logits_before_lm_head" in l)
    assert "enabled" in line and "disabled" not in line


def test_cli_list_reports_bad_yaml_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("transforms:\n  fuse_gemms: {enabeld: true}\n")
    assert transforms_main(["--list", "--yaml", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "enabeld" in err


def test_cli_list_shows_the_top_level_shortcuts_of_upstreams_yaml(capsys):
    yaml_path = Path(__file__).parents[2] / "examples" / "auto_deploy" / "nemotron_flash.yaml"
    assert transforms_main(["--list", "--yaml", str(yaml_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("compile"))
    assert "backend=torch-cudagraph" in line and "384]" in line
