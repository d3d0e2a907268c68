"""DeepSeekV3: shapes, losses, left padding, KV cache, checkpoints in the HF layout."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from r1model.model import DeepSeekV3, ModelConfig


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return DeepSeekV3(ModelConfig.preset("tiny"))


def test_tiny_preset_has_1_to_3_million_parameters(model):
    assert 1_000_000 <= model.num_parameters() <= 3_000_000
    assert model.num_parameters(activated=True) < model.num_parameters()


def test_logits_shape_and_losses(model):
    ids = torch.randint(0, 103, (3, 12))
    out = model(ids)
    assert out.logits.shape == (3, 12, 103) and out.loss is None
    out = model(ids, labels=ids)
    assert out.lm_loss.item() == pytest.approx(torch.log(torch.tensor(103.0)).item(), rel=0.05)
    assert out.mtp_loss.item() > 0 and out.aux_loss.item() > 0
    expected = out.lm_loss + 0.3 * out.mtp_loss + out.aux_loss
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert model.mtp[0].eh_proj.weight.grad is not None  # MTP is trained through the loss


def test_ignored_labels_do_not_count(model):
    ids = torch.randint(0, 103, (2, 10))
    labels = ids.clone()
    labels[:, :5] = -100
    full = model(ids, labels=ids)
    part = model(ids, labels=labels)
    assert not torch.allclose(full.lm_loss, part.lm_loss)
    logp = model(ids).logits[:, 4:-1].log_softmax(-1).gather(-1, ids[:, 5:, None])
    assert part.lm_loss.item() == pytest.approx(-logp.mean().item(), rel=1e-5)


def test_left_padding_gives_the_same_logits_as_no_padding(model):
    model.eval()
    short = torch.randint(3, 103, (1, 6))
    alone = model(short).logits
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), short], dim=1)
    mask = torch.tensor([[0] * 4 + [1] * 6])
    together = model(padded, attention_mask=mask).logits[:, 4:]
    assert torch.allclose(alone, together, atol=1e-5)


def test_incremental_decoding_with_cache_equals_full_forward(model):
    model.eval()
    ids = torch.randint(3, 103, (2, 14))
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_cache(2, 20)
        parts = [model(ids[:, :9], cache=cache).logits]
        for i in range(9, 14):
            parts.append(model(ids[:, i:i + 1], cache=cache).logits)
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_shared_prompt_forward_equals_one_forward_per_sequence_with_the_same_gradients(model):
    """GRPO's update runs each prompt once (encode_prefix) and its completions against it
    (completion_logits): log-probabilities and gradients must equal a plain forward of each sequence."""
    prompts = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16]]
    completions = [[20, 21, 22], [23], [24, 25, 26, 27, 28], [29, 30], [31, 32, 33], [34], [35, 36], [37, 38, 39, 40], [41]]
    group = [i // 3 for i in range(len(completions))]

    def grads():
        out = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return out

    seqs = [prompts[g] + c for g, c in zip(group, completions)]
    ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    logp = model(ids, attention_mask=mask).logits.log_softmax(-1)
    plain = [logp[i, len(prompts[g]) - 1 + torch.arange(len(c)), c] for i, (g, c) in enumerate(zip(group, completions))]
    torch.cat(plain).sum().backward()
    plain_grads = grads()

    p_ids = torch.zeros(3, 5, dtype=torch.long)
    p_mask = torch.zeros_like(p_ids)
    for i, p in enumerate(prompts):  # left-padded
        p_ids[i, 5 - len(p):], p_mask[i, 5 - len(p):] = torch.tensor(p), 1
    c_ids = torch.zeros(len(completions), 5, dtype=torch.long)
    c_mask = torch.zeros_like(c_ids)
    for i, c in enumerate(completions):  # right-padded
        c_ids[i, :len(c)], c_mask[i, :len(c)] = torch.tensor(c), 1
    prefix = model.encode_prefix(p_ids, p_mask)
    logp = model.completion_logits(prefix, torch.tensor(group), c_ids, c_mask).log_softmax(-1)
    shared = [logp[i, torch.arange(len(c)), c] for i, c in enumerate(completions)]
    torch.cat(shared).sum().backward()
    shared_grads = grads()

    for a, b in zip(plain, shared):
        assert torch.allclose(a, b, atol=1e-5)
    assert plain_grads.keys() == shared_grads.keys()
    for name, g in plain_grads.items():
        assert torch.allclose(g, shared_grads[name], atol=1e-5, rtol=1e-4), name
    with pytest.raises(ValueError, match="left-padded"):
        model.encode_prefix(c_ids, c_mask)


def test_save_and_load_round_trip_in_hf_layout(model, tmp_path):
    model.layers[1].mlp.gate.e_score_correction_bias.fill_(0.25)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "deepseek_v3"
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    for key in ("model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_a_proj.weight",
                "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "model.layers.0.mlp.gate_proj.weight",
                "model.layers.1.mlp.gate.weight", "model.layers.1.mlp.gate.e_score_correction_bias",
                "model.layers.1.mlp.experts.7.down_proj.weight", "model.layers.1.mlp.shared_experts.up_proj.weight",
                "model.layers.4.eh_proj.weight", "model.layers.4.enorm.weight", "model.layers.4.shared_head.norm.weight"):
        assert key in keys, key
    again = DeepSeekV3.from_pretrained(tmp_path)
    ids = torch.randint(0, 103, (2, 8))
    assert torch.equal(again(ids).logits, model(ids).logits)
    assert torch.equal(again.layers[1].mlp.gate.e_score_correction_bias, torch.full((8,), 0.25))


def test_fused_expert_layout_loads_the_same(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    for layer in (1, 2, 3, 4):
        p = f"model.layers.{layer}.mlp.experts"
        gate_up = [torch.cat([weights.pop(f"{p}.{e}.gate_proj.weight"), weights.pop(f"{p}.{e}.up_proj.weight")])
                   for e in range(8)]
        down = [weights.pop(f"{p}.{e}.down_proj.weight") for e in range(8)]
        weights[f"{p}.gate_up_proj"] = torch.stack(gate_up)
        weights[f"{p}.down_proj"] = torch.stack(down)
    save_file(weights, str(tmp_path / "model.safetensors"))
    again = DeepSeekV3.from_pretrained(tmp_path)
    ids = torch.randint(0, 103, (1, 8))
    assert torch.equal(again(ids).logits, model(ids).logits)


def test_missing_and_unexpected_keys_are_listed_by_name(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["model.layers.2.self_attn.o_proj.weight"]
    weights["model.layers.0.self_attn.surprise.weight"] = torch.zeros(1)
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError) as err:
        DeepSeekV3.from_pretrained(tmp_path)
    assert "model.layers.2.self_attn.o_proj.weight" in str(err.value)
    assert "model.layers.0.self_attn.surprise.weight" in str(err.value)


def test_checkpoint_without_mtp_weights_loads_without_mtp(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = {k: v for k, v in load_file(str(tmp_path / "model.safetensors")).items()
               if not k.startswith("model.layers.4.")}
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.warns(UserWarning, match="no MTP weights"):
        again = DeepSeekV3.from_pretrained(tmp_path)
    assert again.config.num_nextn_predict_layers == 0 and len(again.mtp) == 0


def test_fp8_checkpoint_with_block_scales_loads_dequantised(model, tmp_path):
    from r1model.model.fp8 import dequantize_blocks, quantize_blocks
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    key = "model.layers.0.self_attn.o_proj.weight"
    q, scale = quantize_blocks(weights[key])
    weights[key], weights[key + "_scale_inv"] = q, scale
    save_file(weights, str(tmp_path / "model.safetensors"))
    again = DeepSeekV3.from_pretrained(tmp_path)
    assert torch.equal(again.layers[0].self_attn.o_proj.weight, dequantize_blocks(q, scale))


def test_bad_config_json_names_the_file_and_field(tmp_path, model):
    model.save_pretrained(tmp_path)
    text = (tmp_path / "config.json").read_text().replace('"topk_group": 2', '"topk_group": 9')
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match="config.json: topk_group: "):
        DeepSeekV3.from_pretrained(tmp_path)


def test_preset_sizes_small_is_about_100m_and_v3_is_671b_with_37b_activated():
    def build(name, **changes):
        with torch.device("meta"):  # shapes only, no memory
            return DeepSeekV3(ModelConfig.preset(name, num_nextn_predict_layers=0, **changes))

    assert 80e6 <= build("small").num_parameters() <= 130e6
    # V3: 3 dense layers then 58 identical MoE layers; build 3 and 4 layers and extrapolate
    dense, one_moe = build("deepseek-v3", num_hidden_layers=3), build("deepseek-v3", num_hidden_layers=4)
    for activated, billions in ((False, 671), (True, 37.5)):
        base = dense.num_parameters(activated=activated)
        total = base + 58 * (one_moe.num_parameters(activated=activated) - base)
        assert total / 1e9 == pytest.approx(billions, abs=0.6)
