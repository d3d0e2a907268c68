"""RunConfig: defaults, schema completeness, every error at once, torch-free import."""
import json
import subprocess
import sys

import pytest

from r1model.train.config import (ConfigError, RunConfig, config_warnings, load_run_config, run_config_schema,
                                  validate_run_config)
from r1model.train.metrics import METRICS, describe, registry


def _properties(schema):
    yield "", schema
    for name, sub in schema.get("$defs", {}).items():
        yield name + ".", sub


def test_every_schema_field_has_a_description_and_a_default():
    missing = []
    for prefix, sub in _properties(run_config_schema()):
        for name, prop in sub.get("properties", {}).items():
            if "description" not in prop or "default" not in prop:
                missing.append(prefix + name)
    assert missing == []


def test_defaults_document_the_report_values():
    cfg = validate_run_config({})
    assert cfg.kind == "grpo" and cfg.grpo.group_size == 8 and cfg.grpo.beta == 0.001
    fields = RunConfig.model_json_schema()["$defs"]["GRPOConfig"]["properties"]
    assert "16" in fields["group_size"]["description"]
    assert "400" in fields["ref_refresh_interval"]["description"]
    assert "0.28" in fields["epsilon_high"]["description"]
    assert "skips the reference" in fields["beta"]["description"]


def test_invalid_config_lists_every_error_by_dotted_field():
    with pytest.raises(ConfigError) as info:
        validate_run_config({
            "kind": "train",
            "grpo": {"group_size": 1, "beta": -1, "typo": 3},
            "rewards": [{"name": "accuracy"}, {"name": "vibes"}],
            "datasets": [{"task": None}],
        })
    fields = [e["field"] for e in info.value.errors]
    assert set(fields) == {"kind", "grpo.group_size", "grpo.beta", "grpo.typo", "rewards.1.name", "datasets.0"}
    text = str(info.value)
    assert all(field in text for field in fields)
    assert "6 errors" in text


def test_minibatches_must_divide_the_rollout_batch():
    with pytest.raises(ConfigError, match="minibatches"):
        validate_run_config({"grpo": {"prompts_per_step": 3, "group_size": 4, "minibatches": 5}})


def test_model_may_be_given_as_a_plain_preset_name():
    assert validate_run_config({"model": "tiny"}).model.source == "tiny"


def test_reward_listed_twice_is_an_error():
    with pytest.raises(ConfigError, match="listed twice"):
        validate_run_config({"rewards": [{"name": "format"}, {"name": "format"}]})


def test_template_must_contain_the_prompt_placeholder():
    assert validate_run_config({"template": "Q: {prompt}\nA:"}).template == "Q: {prompt}\nA:"
    with pytest.raises(ConfigError, match="template"):
        validate_run_config({"template": "no placeholder"})


def test_config_round_trips_through_json():
    cfg = validate_run_config({"kind": "pretrain", "seed": 3, "datasets": [{"task": "addition", "difficulty": {"digits": 5}}]})
    again = validate_run_config(json.loads(cfg.to_json()))
    assert again == cfg


def test_load_run_config_names_the_file_and_the_json_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n"kind": "grpo",\n}')
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    assert "bad.json" in str(info.value) and "line 3" in str(info.value)


def test_config_and_metrics_modules_import_without_torch():
    code = ("import sys, r1model.train.config, r1model.train.metrics, r1model.train.recipes, r1model.events; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_metric_registry_documents_every_name_with_a_unit():
    assert describe("rewards/accuracy/mean").unit == "reward"
    assert describe("completions/mean_length").unit == "tokens"
    assert describe("no/such/metric") is None
    for name in ("reward", "kl", "entropy", "clip_ratio/low_mean", "time/generate", "train/loss", "moe/max_violation"):
        assert name in METRICS
    assert all(row["description"] and row["unit"] for row in registry())


def test_dr_grpo_aggregation_drops_the_std_division_unless_told_otherwise():
    """Dr. GRPO removes both the length normaliser and the std division: an unset advantage_scaling follows."""
    cfg = validate_run_config({"grpo": {"loss_aggregation": "dr_grpo"}})
    assert cfg.grpo.advantage_scaling == "none" and config_warnings(cfg) == []
    assert validate_run_config({"grpo": {"loss_aggregation": "dapo"}}).grpo.advantage_scaling == "std"
    assert validate_run_config({}).grpo.advantage_scaling == "std"
    again = validate_run_config(json.loads(cfg.to_json()))  # stored config.json: now explicit, same value
    assert again.grpo.advantage_scaling == "none" and config_warnings(again) == []


def test_dr_grpo_with_explicit_std_scaling_is_kept_with_a_warning_on_the_field():
    cfg = validate_run_config({"grpo": {"loss_aggregation": "dr_grpo", "advantage_scaling": "std"}})
    assert cfg.grpo.advantage_scaling == "std"
    warnings = config_warnings(cfg)
    assert [w["field"] for w in warnings] == ["grpo.advantage_scaling"]
    assert "Dr. GRPO" in warnings[0]["msg"] and "none" in warnings[0]["msg"]
    explicit_none = validate_run_config({"grpo": {"loss_aggregation": "dr_grpo", "advantage_scaling": "none"}})
    assert config_warnings(explicit_none) == []
    # the GRPO section of a rejection-sampling job (G, prompts per step): nothing to warn about
    assert config_warnings(validate_run_config({"kind": "rejection_sampling", "grpo": cfg.grpo.model_dump()})) == []


def test_cli_train_and_validate_print_config_warnings_to_stderr(tmp_path, capsys, monkeypatch):
    import r1model.train.runner
    from r1model.__main__ import main

    path = tmp_path / "dr.json"
    path.write_text(json.dumps({"grpo": {"loss_aggregation": "dr_grpo", "advantage_scaling": "std"}}))
    ran = []
    monkeypatch.setattr(r1model.train.runner, "run", lambda config, run_dir, progress_stream: ran.append(config) or 0)
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
    assert ran and "warning: grpo.advantage_scaling:" in capsys.readouterr().err
    assert main(["validate-config", str(path)]) == 0
    out = capsys.readouterr()
    assert "warning: grpo.advantage_scaling:" in out.err and "valid grpo config" in out.out


def test_old_spellings_load_into_todays_fields_with_a_note_each():
    """kind rollout, grpo's sampling keys and model.overrides.precision still load (stored configs, old files),
    into rejection_sampling, the sampling section and the run's precision; config_warnings names each one."""
    old = {"kind": "rollout", "model": {"source": "tiny", "overrides": {"precision": "fp8", "num_hidden_layers": 2}},
           "grpo": {"group_size": 4, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32,
                    "rollout_engine": "speculative"}}
    config = validate_run_config(old)
    assert config.kind == "rejection_sampling" and config.grpo.group_size == 4
    assert (config.sampling.temperature, config.sampling.top_p, config.sampling.max_new_tokens,
            config.sampling.engine) == (0.6, 0.95, 32, "speculative")
    assert config.precision == "fp8" and config.model.overrides == {"num_hidden_layers": 2}
    fields = [w["field"] for w in config_warnings(config)]
    assert fields == ["kind", "grpo.temperature", "grpo.top_p", "grpo.max_new_tokens", "grpo.rollout_engine",
                      "model.overrides.precision"]
    assert old["kind"] == "rollout" and "temperature" in old["grpo"]  # the caller's dict is not changed
    # today's spelling: no notes, and a key given in both places keeps the new one
    assert config_warnings(validate_run_config(config.model_dump())) == []
    both = validate_run_config({"grpo": {"temperature": 0.3}, "sampling": {"temperature": 0.9}})
    assert both.sampling.temperature == 0.9


def test_a_moved_key_with_a_bad_value_is_named_at_its_new_place():
    with pytest.raises(ConfigError) as info:
        validate_run_config({"grpo": {"top_p": 3}})
    assert [e["field"] for e in info.value.errors] == ["sampling.top_p"]
