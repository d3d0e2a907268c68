"""Shared by the model benches (not a figure of its own): a small addition corpus and a pretraining loop.

Each document is the mini template with a worked solution, as the lab's tiny base is trained:
``User: 1234+567\\nAssistant: <think>4+7+0=11 ...</think><answer>1801</answer><eos>``.
Run directly, it prints the corpus size (last line name=value, like the benches).
"""
import time

import torch

from r1model.model import R1Tokenizer
from r1model.tasks.arithmetic import AdditionTask


def addition_corpus(tok: R1Tokenizer, n: int = 3000, digits: int = 4, seed: int = 0) -> torch.Tensor:
    """One long stream of token ids (documents back to back)."""
    docs = []
    for p in AdditionTask().generate("train", n, seed=seed, digits=digits):
        docs.append(f"User: {p.problem}\nAssistant: <think>{p.solution}</think><answer>{p.answer}</answer><eos>")
    return torch.tensor([i for ids in tok.encode_batch(docs) for i in ids])


def addition_prompts(tok: R1Tokenizer, n: int, digits: int = 4, seed: int = 1) -> list[list[int]]:
    return [tok.encode(f"User: {p.problem}\nAssistant: ")
            for p in AdditionTask().generate("test", n, seed=seed, digits=digits)]


def pretrain(model, data: torch.Tensor, steps: int, batch: int = 16, seq_len: int = 64, lr: float = 3e-3,
             seed: int = 0) -> tuple[list[float], float]:
    """AdamW on random windows; returns (lm losses per step, seconds). Same seed -> same batches."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:  # short warm-up, then constant
            group["lr"] = lr * min(1.0, (step + 1) / 10)
        starts = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=g)
        ids = torch.stack([data[s:s + seq_len] for s in starts.tolist()])
        out = model(ids, labels=ids)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        model.update_expert_bias()
        losses.append(out.lm_loss.item())
    return losses, time.perf_counter() - start


if __name__ == "__main__":
    stream = addition_corpus(R1Tokenizer.build())
    print(f"corpus_tokens={len(stream)}")
