"""KV cache bytes per token per layer: naive MLA (full per-head K and V) vs absorbed MLA (latent + RoPE key).

For the tiny preset and for DeepSeek-V3's shape, measured from tensors a real forward produces (one MLA
layer; the V3-shaped layer is built with real weights) and by formula. The naive K is per head
[k_nope | k_rope] (qk_nope + qk_rope), V per head v_head_dim. Last line: V3's absorbed cache as a fraction
of the report's MHA comparison 2 * 128 heads * 128 (the naive MLA cache, with 192-wide keys, is larger).
Elements are the dtype-independent figure; bytes are at bf16 (2 bytes), what an inference cache holds.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

from r1model.model import ModelConfig  # noqa: E402
from r1model.model.mla import MLA, MLACache  # noqa: E402
from r1model.model.rope import RotaryEmbedding  # noqa: E402

T = 4  # tokens pushed through the layer
BYTES = 2  # bf16


def measure(cfg: ModelConfig) -> tuple[int, int]:
    """(naive, absorbed) cached elements per token per layer, measured on one MLA layer."""
    with torch.device("meta"):
        mla = MLA(cfg.replace(precision="fp32"))
    mla = mla.to_empty(device="cpu").to(torch.bfloat16)
    for p in mla.parameters():
        torch.nn.init.normal_(p, std=0.02)
    x = torch.randn(1, T, cfg.hidden_size, dtype=torch.bfloat16)
    cos, sin = RotaryEmbedding(cfg.qk_rope_head_dim, cfg.rope_theta)(torch.arange(T)[None])
    mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
    cache = MLACache(1, 1, T, cfg.kv_lora_rank, cfg.qk_rope_head_dim, dtype=torch.bfloat16)
    with torch.no_grad():
        mla(x, cos.bfloat16(), sin.bfloat16(), mask, cache=cache)
        absorbed = (cache.c_kv[0, 0].numel() + cache.k_rope[0, 0].numel()) // T
        # what a naive cache would hold: the expanded per-head keys and values of the same tokens
        kv = mla.kv_b_proj(cache.c_kv[0]).view(1, T, cfg.num_attention_heads, -1)
        k_nope, v = kv.split([cfg.qk_nope_head_dim, cfg.v_head_dim], dim=-1)
        k = torch.cat([k_nope, cache.k_rope[0][:, :, None].expand(-1, -1, cfg.num_attention_heads, -1)], -1)
        naive = (k.numel() + v.numel()) // T
    return naive, absorbed


def main() -> None:
    fraction = {}
    for name in ("tiny", "deepseek-v3"):
        cfg = ModelConfig.preset(name)
        naive, absorbed = measure(cfg)
        f_naive, f_absorbed = cfg.kv_cache_elements_per_token(False), cfg.kv_cache_elements_per_token(True)
        assert (naive, absorbed) == (f_naive, f_absorbed), (naive, absorbed, f_naive, f_absorbed)
        fraction[name] = absorbed / naive
        print(f"{name}: naive {naive} elements ({naive * BYTES} B bf16) measured = formula "
              f"{cfg.num_attention_heads}*({cfg.qk_head_dim}+{cfg.v_head_dim}); absorbed {absorbed} elements "
              f"({absorbed * BYTES} B) = {cfg.kv_lora_rank}+{cfg.qk_rope_head_dim}; fraction {fraction[name]:.4f}")
    v3 = ModelConfig.preset("deepseek-v3")
    mha = 2 * v3.num_attention_heads * 128  # the report's MHA comparison: 2 * heads * head_dim
    print(f"deepseek-v3 absorbed vs the report's MHA 2*128*128={mha}: {576 / mha:.4%} "
          f"({v3.kv_cache_elements_per_token(True)} elements)")
    print(f"v3_absorbed_cache_fraction_of_mha={576 / mha:.4f}")


if __name__ == "__main__":
    main()
