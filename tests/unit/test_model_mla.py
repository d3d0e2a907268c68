"""MLA: the absorbed path (latent cache) equals the naive path (full per-head K/V)."""
import pytest
import torch

from r1model.model import DeepSeekV3, ModelConfig
from r1model.model.mla import MLA
from r1model.model.rope import RotaryEmbedding


def inputs(cfg, b=2, t=9):
    x = torch.randn(b, t, cfg.hidden_size)
    pos = torch.arange(t).expand(b, t)
    cos, sin = RotaryEmbedding(cfg.qk_rope_head_dim, cfg.rope_theta)(pos)
    mask = torch.ones(t, t, dtype=torch.bool).tril().expand(b, 1, t, t)
    return x, cos, sin, mask


@pytest.mark.parametrize("q_lora_rank", [64, 0])
def test_absorbed_equals_naive(q_lora_rank):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", q_lora_rank=q_lora_rank)
    mla = MLA(cfg)
    for p in mla.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, cos, sin, mask = inputs(cfg)
    naive = mla(x, cos, sin, mask, absorb=False)
    absorbed = mla(x, cos, sin, mask, absorb=True)
    assert naive.abs().mean() > 1e-3
    assert torch.allclose(naive, absorbed, atol=1e-5, rtol=1e-4)


def test_whole_model_absorbed_equals_naive_with_left_padding():
    torch.manual_seed(1)
    model = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    ids = torch.randint(3, 103, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    a = model(ids, attention_mask=mask, absorb=False).logits
    b = model(ids, attention_mask=mask, absorb=True).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_cache_holds_latent_plus_rope_key_per_token():
    cfg = ModelConfig.preset("tiny")
    cache = DeepSeekV3(cfg).new_cache(batch=3, max_len=10)
    assert cache.c_kv.shape == (cfg.num_hidden_layers, 3, 10, cfg.kv_lora_rank)
    assert cache.k_rope.shape == (cfg.num_hidden_layers, 3, 10, cfg.qk_rope_head_dim)
    assert cache.nbytes_per_token_per_layer() == (32 + 16) * 4


def test_rope_rotates_interleaved_pairs():
    from r1model.model.rope import apply_rope
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # pairs (1, 0) and (0, 1)
    angle = torch.tensor([[torch.pi / 2, 0.0]])
    out = apply_rope(x, angle.cos(), angle.sin())
    # pair 0 rotated by 90 degrees -> (0, 1); pair 1 unrotated -> (0, 1); layout [evens | odds]
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), atol=1e-6)
