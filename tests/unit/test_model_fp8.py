"""FP8 (E4M3, block-scaled): round-trip error bound, fine-grained scales, the FP8 Linear, the precision switch."""
import pytest
import torch

from r1model.model import DeepSeekV3, ModelConfig
from r1model.model import fp8 as fp8_module
from r1model.model.fp8 import (E4M3_MAX, BF16Linear, FP8Linear, dequantize_blocks, dequantize_tiles,
                               quantize_blocks, quantize_tiles)


def e4m3_bound(x, scale):
    # 3 mantissa bits: relative rounding error <= 2^-4 for normals; subnormal step is 2^-9 * scale
    return torch.maximum(x.abs() / 16, scale * 2.0 ** -10)


def test_activation_tiles_round_trip_within_the_e4m3_bound():
    torch.manual_seed(0)
    x = torch.randn(6, 300) * torch.logspace(-3, 3, 300)  # 3 tiles, the last one partial
    q, scale = quantize_tiles(x)
    assert q.dtype == torch.float8_e4m3fn and scale.dtype == torch.float32 and scale.shape == (6, 3)
    assert torch.allclose(scale, torch.stack([t.abs().amax(-1) for t in x.split(128, -1)], -1) / E4M3_MAX)
    back = dequantize_tiles(q, scale)
    per_element_scale = scale.repeat_interleave(128, -1)[:, :300]
    assert bool(((x - back).abs() <= e4m3_bound(x, per_element_scale)).all())


def test_weight_blocks_round_trip_within_the_e4m3_bound():
    torch.manual_seed(0)
    w = torch.randn(300, 200)
    q, scale = quantize_blocks(w)
    assert scale.shape == (3, 2)
    back = dequantize_blocks(q, scale)
    per_element_scale = scale.repeat_interleave(128, 0)[:300].repeat_interleave(128, 1)[:, :200]
    assert bool(((w - back).abs() <= e4m3_bound(w, per_element_scale)).all())


def test_an_outlier_only_coarsens_its_own_tile():
    torch.manual_seed(0)
    x = torch.randn(1, 256)
    x[0, 5] = 1e6  # beyond E4M3's ~2e5 dynamic range relative to the other values
    back = dequantize_tiles(*quantize_tiles(x))
    rel = ((back - x).abs() / x.abs().clamp(min=1e-3))[0]
    assert rel[128:].max() <= 1 / 16 + 1e-6  # the other tile keeps full E4M3 precision
    per_tensor = x / (x.abs().max() / E4M3_MAX)
    coarse = per_tensor.to(torch.float8_e4m3fn).float() * (x.abs().max() / E4M3_MAX)
    assert (coarse - x)[0, 128:].abs().mean() > 10 * (back - x)[0, 128:].abs().mean()


def test_fp8_linear_is_close_to_fp32_forward_and_backward():
    torch.manual_seed(0)
    fp8 = FP8Linear(256, 192)
    ref = torch.nn.Linear(256, 192, bias=False)
    ref.weight.data.copy_(fp8.weight.data)
    x = torch.randn(16, 256, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = fp8(x), ref(x_ref)
    assert 0 < (y - y_ref).norm() / y_ref.norm() < 0.06
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    assert 0 < (x.grad - x_ref.grad).norm() / x_ref.grad.norm() < 0.06
    assert 0 < (fp8.weight.grad - ref.weight.grad).norm() / ref.weight.grad.norm() < 0.06
    assert fp8.weight.dtype == torch.float32  # master weights stay high precision


@pytest.mark.parametrize("precision, linear_type", [("fp8", FP8Linear), ("bf16", BF16Linear)])
def test_precision_switch_quantises_gemms_but_not_embedding_head_gate(precision, linear_type):
    torch.manual_seed(0)
    ref = DeepSeekV3(ModelConfig.preset("tiny"))
    model = DeepSeekV3(ModelConfig.preset("tiny", precision=precision))
    model.load_state_dict(ref.state_dict())
    assert isinstance(model.layers[0].self_attn.kv_b_proj, linear_type)
    assert isinstance(model.layers[1].mlp.experts[0].down_proj, linear_type)
    assert isinstance(model.mtp[0].eh_proj, linear_type)
    assert type(model.lm_head) is torch.nn.Linear and type(model.embed_tokens) is torch.nn.Embedding
    assert model.layers[1].mlp.gate.weight.dtype == torch.float32
    ids = torch.randint(0, 103, (2, 12))
    out, out_ref = model(ids, labels=ids), ref(ids, labels=ids)
    out.loss.backward()
    assert out.logits.dtype == torch.float32
    assert abs(out.loss.item() - out_ref.loss.item()) / out_ref.loss.item() < 0.01
    assert not torch.equal(out.logits, out_ref.logits)



def _rollout_and_teacher_forced_logprobs(seed: int):
    """Per-token log-probs of fp8 tiny-model completions from KV-cache decoding (absorbed MLA) and from the
    trainer's teacher-forced pass (naive MLA: prompts encoded once, completions after them) of the same
    tokens, all rows concatenated."""
    from r1model.model import R1Tokenizer
    from r1model.generation import BuiltinEngine, SamplingParams
    from r1model.train.modeling import completion_logprobs

    torch.manual_seed(seed)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny", precision="fp8")).eval()
    prompts = [tok.encode("12+34="), tok.encode("<think>"), tok.encode("a much longer prompt: 7*8=")]
    rollout, teacher = [], []
    for sample_seed in range(3):
        completions = BuiltinEngine(model, tok).generate(prompts, SamplingParams(max_new_tokens=16, seed=sample_seed))
        with torch.no_grad():
            forced = completion_logprobs(model, prompts, [c.token_ids for c in completions], 0)[0]
        for c, row in zip(completions, forced):
            rollout.append(torch.tensor(c.logprobs))
            teacher.append(torch.tensor(row))
    return torch.cat(rollout), torch.cat(teacher)


def test_fp8_decoding_multiplies_the_same_quantised_kv_b_weight_as_teacher_forcing(monkeypatch):
    """Under FP8 the sampler must be the policy that teacher forcing trains (π_old at μ = 1): absorbed-MLA
    decoding read kv_b_proj's fp32 master weight while the forward multiplies its E4M3 blocks (median
    log-prob gap ~5e-3). With the activations' quantiser switched off, every remaining function is continuous
    and the two paths are the same product up to float summation order."""
    monkeypatch.setattr(fp8_module, "fake_quant_tiles", lambda x: x.float())
    rollout, teacher = _rollout_and_teacher_forced_logprobs(seed=0)
    assert torch.allclose(rollout, teacher, atol=1e-5, rtol=0)


def test_fp8_rollout_logprobs_equal_teacher_forced_ones():
    """Full FP8 (weights and activations quantised). The two paths compute the same function, but in another
    summation order: an activation a few ulps apart can round to the neighbouring E4M3 value, and such a flip
    changes that token and the later ones of its row by up to one E4M3 step (2^-4 relative) of one element.
    So most tokens agree to float precision, and all within a few E4M3 steps' worth of log-probability;
    before decoding used the quantised kv_b weight and latent, nearly every token was off (median ~1e-2)."""
    rollout, teacher = _rollout_and_teacher_forced_logprobs(seed=1)
    gap = (rollout - teacher).abs()
    assert float(gap.median()) < 1e-5
    assert float((gap < 1e-5).float().mean()) > 2 / 3
    assert float(gap.max()) < 0.1
