"""Training throughput of the tiny preset: tokens/s and achieved FLOP/s as a fraction of a measured matmul peak.

Peer measured in the same run: the best fp32 GEMM rate of this thread (torch.mm, 1024x1024x1024).
Model FLOPs per token = 6 x matmul parameters a token activates (attention projections, dense MLP, shared
expert, K of the routed experts, gate, output head; the MTP module and its use of the head included; the
embedding lookup is free) + causal attention 6 x layers x heads x (qk_head_dim + v_head_dim) x T/2.
AdamW, batch 16 x 64 tokens, loss with MTP and balance terms, update_expert_bias each step; 1 thread.
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))

from model_corpus import addition_corpus, pretrain  # noqa: E402

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer  # noqa: E402

BATCH, SEQ, STEPS = 16, 64, 25


def matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def flops_per_token(model: DeepSeekV3) -> float:
    c = model.config
    matmul_params = model.num_parameters(activated=True) - model.embed_tokens.weight.numel()
    matmul_params += c.num_nextn_predict_layers * model.lm_head.weight.numel()  # MTP reuses the head
    layers = c.num_hidden_layers + c.num_nextn_predict_layers
    attention = 6 * layers * c.num_attention_heads * (c.qk_head_dim + c.v_head_dim) * SEQ / 2
    return 6 * matmul_params + attention


def main() -> None:
    torch.manual_seed(0)
    data = addition_corpus(R1Tokenizer.build(), n=1000)
    model = DeepSeekV3(ModelConfig.preset("tiny"))
    pretrain(model, data, 3, batch=BATCH, seq_len=SEQ)  # warm-up
    peak = matmul_peak()
    _, seconds = pretrain(model, data, STEPS, batch=BATCH, seq_len=SEQ, seed=1)
    peak = max(peak, matmul_peak())  # measured before and after, best of both
    tokens_per_s = STEPS * BATCH * SEQ / seconds
    per_token = flops_per_token(model)
    achieved = tokens_per_s * per_token
    print(f"tiny: {model.num_parameters():,} parameters, {model.num_parameters(activated=True):,} activated; "
          f"{per_token / 1e6:.2f} MFLOP per token")
    print(f"training: {tokens_per_s:.0f} tokens/s, {achieved / 1e9:.2f} GFLOP/s; "
          f"matmul peak (1 thread, fp32 1024^3): {peak / 1e9:.1f} GFLOP/s")
    print(f"train_flops_fraction_of_matmul_peak={achieved / peak:.3f}")


if __name__ == "__main__":
    main()
