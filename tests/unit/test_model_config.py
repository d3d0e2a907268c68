"""ModelConfig: presets, validation naming the field, transformers config.json round trip, no torch."""
import subprocess
import sys

import pytest

from r1model.model.config import ModelConfig


def test_presets_build_and_tiny_is_tiny():
    tiny = ModelConfig.preset("tiny")
    v3 = ModelConfig.preset("deepseek-v3")
    assert tiny.hidden_size == 128 and tiny.first_k_dense_replace == 1
    assert (v3.hidden_size, v3.num_hidden_layers, v3.n_routed_experts, v3.num_experts_per_tok) == (7168, 61, 256, 8)
    assert ModelConfig.preset("small").hidden_size == 768 and ModelConfig.preset("small").n_routed_experts == 8


def test_unknown_preset_is_rejected_by_name():
    with pytest.raises(ValueError, match="^preset: unknown name 'huge'"):
        ModelConfig.preset("huge")


@pytest.mark.parametrize("changes, field", [
    (dict(topk_group=5, n_group=4), "topk_group"),
    (dict(num_experts_per_tok=5, n_group=4, topk_group=2), "num_experts_per_tok"),
    (dict(n_group=3), "n_group"),
    (dict(precision="int4"), "precision"),
    (dict(qk_rope_head_dim=15), "qk_rope_head_dim"),
    (dict(hidden_size=0), "hidden_size"),
    (dict(first_k_dense_replace=9), "first_k_dense_replace"),
    (dict(bias_update_speed=-1.0), "bias_update_speed"),
    (dict(scoring_func="relu"), "scoring_func"),
    (dict(pad_token_id=500), "pad_token_id"),
    (dict(num_attention_heads=2.5), "num_attention_heads"),
])
def test_inconsistent_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        ModelConfig.preset("tiny", **changes)


def test_hf_dict_round_trip_keeps_every_field():
    cfg = ModelConfig.preset("tiny", precision="fp8", q_lora_rank=0, mtp_loss_weight=0.1)
    data = cfg.to_hf_dict()
    assert data["model_type"] == "deepseek_v3" and data["architectures"] == ["DeepseekV3ForCausalLM"]
    assert data["q_lora_rank"] is None  # HF: null = no query compression
    assert data["rope_parameters"] == {"rope_type": "default", "rope_theta": 10000.0}
    assert ModelConfig.from_hf_dict(data) == cfg


def test_hf_dict_with_yarn_or_wrong_model_type_is_rejected():
    data = ModelConfig.preset("tiny").to_hf_dict()
    with pytest.raises(ValueError, match="^model_type: "):
        ModelConfig.from_hf_dict({**data, "model_type": "llama"})
    with pytest.raises(ValueError, match="^rope_parameters: "):
        ModelConfig.from_hf_dict({**data, "rope_parameters": {"rope_type": "yarn", "factor": 40}})


def test_absorbed_cache_of_v3_is_576_elements_vs_32768():
    v3 = ModelConfig.preset("deepseek-v3")
    assert v3.kv_cache_elements_per_token(absorbed=True) == 576
    # naive MHA cache of the same shape: K (128 heads x 192) + V (128 x 128)
    assert v3.kv_cache_elements_per_token(absorbed=False) == 128 * (192 + 128)


def test_config_module_imports_without_torch():
    code = "import sys; import r1model.model.config, r1model.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_model_folder_is_a_folder_with_config_json(tmp_path):
    from r1model.model.config import is_model_folder

    assert not is_model_folder(tmp_path) and not is_model_folder(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}")
    assert is_model_folder(tmp_path) and is_model_folder(str(tmp_path))
    (tmp_path / "file").write_text("")
    assert not is_model_folder(tmp_path / "file")
