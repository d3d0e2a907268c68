"""Checkpoint parity with transformers' DeepseekV3ForCausalLM (random weights from a config, no hub).

Needs no services, so it carries no `integration` marker. Group-limited routing: transformers before 5.x
filled masked groups with 0.0 (the official code uses -inf, as we do); the version pinned here uses -inf,
so biased routing with negative scores agrees too — these tests use random non-zero expert biases.
"""
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM  # noqa: E402

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer  # noqa: E402
from r1model.model.checkpoint import load_hf_weights  # noqa: E402
from r1model.generation import BuiltinEngine, SamplingParams  # noqa: E402


def randomise_biases(model_layers):
    with torch.no_grad():
        for gate in model_layers:
            gate.e_score_correction_bias.normal_(0.0, 0.1)


@pytest.mark.parametrize("changes", [{}, {"q_lora_rank": 0}, {"tie_word_embeddings": True}])
def test_r1model_checkpoint_gives_same_logits_in_transformers(tmp_path, changes):
    torch.manual_seed(0)
    ours = DeepSeekV3(ModelConfig.preset("tiny", **changes)).eval()
    randomise_biases(moe.gate for _, moe in ours.moe_layers())
    ours.save_pretrained(tmp_path, tokenizer=R1Tokenizer.build())
    theirs = DeepseekV3ForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 103, (2, 16))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding: RoPE is relative, so HF's unshifted positions give the same logits
    with torch.no_grad():
        a = ours(ids, attention_mask=mask).logits
        b = theirs(ids, attention_mask=mask).logits
    assert torch.allclose(a[0, 5:], b[0, 5:], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


def test_transformers_checkpoint_gives_same_logits_in_r1model(tmp_path):
    torch.manual_seed(1)
    theirs = DeepseekV3ForCausalLM(DeepseekV3Config(**ModelConfig.preset("tiny").to_hf_dict())).eval()
    randomise_biases(layer.mlp.gate for layer in theirs.model.layers[1:])
    theirs.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no MTP weights"):  # transformers does not keep MTP layers
        ours = DeepSeekV3.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 103, (3, 16))
    with torch.no_grad():
        assert torch.allclose(ours(ids).logits, theirs(ids).logits, atol=1e-5)


def test_fused_in_memory_expert_layout_of_transformers_loads(tmp_path):
    torch.manual_seed(2)
    theirs = DeepseekV3ForCausalLM(DeepseekV3Config(**ModelConfig.preset("tiny").to_hf_dict())).eval()
    state = theirs.state_dict()
    assert "model.layers.1.mlp.experts.gate_up_proj" in state  # transformers 5.x holds experts fused
    ours = DeepSeekV3(ModelConfig.preset("tiny", num_nextn_predict_layers=0)).eval()
    load_hf_weights(ours, dict(state))
    ids = torch.randint(0, 103, (2, 10))
    with torch.no_grad():
        assert torch.allclose(ours(ids).logits, theirs(ids).logits, atol=1e-5)


def test_greedy_generation_matches_transformers_generate(tmp_path):
    torch.manual_seed(3)
    tok = R1Tokenizer.build()
    ours = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    ours.save_pretrained(tmp_path)
    theirs = DeepseekV3ForCausalLM.from_pretrained(tmp_path).eval()
    prompt = tok.encode("12+30=")
    mine = BuiltinEngine(ours, tok).generate([prompt], SamplingParams(temperature=0, max_new_tokens=12))[0]
    with torch.no_grad():
        ref = theirs.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                              eos_token_id=[tok.eos_id, tok.token_id("</answer>")], pad_token_id=tok.pad_id)
    assert mine.token_ids == ref[0, len(prompt):].tolist()
