"""FP8 (emulated E4M3, block-scaled, all three GEMMs) vs fp32 pretraining of the tiny preset.

Same initial weights, same batches (addition corpus, worked solutions), AdamW; the loss compared is the
mean next-token CE over the last 20 steps. Last line: relative gap (fp8 - fp32) / fp32 (V3 report: < 0.25%
for FP8 vs BF16 at scale). 1 thread.
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))

from model_corpus import addition_corpus, pretrain  # noqa: E402

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer  # noqa: E402

STEPS, BATCH, SEQ = 120, 8, 64


def main() -> None:
    data = addition_corpus(R1Tokenizer.build())
    torch.manual_seed(0)
    init = DeepSeekV3(ModelConfig.preset("tiny")).state_dict()
    final = {}
    for precision in ("fp32", "fp8"):
        model = DeepSeekV3(ModelConfig.preset("tiny", precision=precision))
        model.load_state_dict(init)
        losses, seconds = pretrain(model, data, STEPS, batch=BATCH, seq_len=SEQ, seed=1)
        final[precision] = sum(losses[-20:]) / 20
        print(f"{precision}: first loss {losses[0]:.4f}, mean of last 20 steps {final[precision]:.4f}, "
              f"{STEPS} steps in {seconds:.1f} s ({STEPS * BATCH * SEQ / seconds:.0f} tokens/s)")
    gap = (final["fp8"] - final["fp32"]) / final["fp32"]
    print(f"fp8_vs_fp32_relative_loss_gap={gap:.4%}")


if __name__ == "__main__":
    main()
