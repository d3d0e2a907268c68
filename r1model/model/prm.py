"""A process reward model (PRM): the DeepSeek-V3 body with a scalar head that scores every step of a solution.

The input is the problem, a newline and the completion; the head reads the final-normed hidden state at the
last token of each step (r1model.tasks.steps) and gives the logit of "this step is correct". Each step is
encoded as its own piece so the positions are exact under any tokenizer. DeepSeek-R1 §4.2 tried and dropped
this kind of reward model; r1model.train.prm trains one, r1model.rewards.process uses it as a GRPO reward.

A checkpoint is a model folder (config.json, model.safetensors and the tokenizer of the body, so it is also a
loadable policy body) plus `prm_head.safetensors` and `prm.json`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from r1model.model.scalar_head import ScalarHeadModel, right_padded
from r1model.tasks.steps import Step

HEAD_FILE = "prm_head.safetensors"
META_FILE = "prm.json"
MAX_TOKENS = 512  # steps past this many input tokens are not scored


class ProcessRewardModel(ScalarHeadModel):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) step logits: one per position (read them at the step ends)."""
        return self.score(self.hidden(input_ids, attention_mask))

    def save(self, directory: str | Path, tokenizer, meta: dict) -> Path:
        directory = Path(directory)
        self.body.save_pretrained(directory, tokenizer=tokenizer)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(directory / HEAD_FILE))
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ProcessRewardModel":
        directory = Path(directory)
        if not (directory / HEAD_FILE).is_file():
            raise FileNotFoundError(f"{directory}: not a process reward model (no {HEAD_FILE})")
        prm = cls.from_policy(directory)
        prm.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        return prm


def encode_steps(tokenizer, problem: str, completion: str, steps: list[Step]) -> tuple[list[int], list[int]]:
    """(token ids of `problem\\n` + completion, the index of each step's last token): the completion is cut
    at every step end and each piece encoded alone. Steps beyond MAX_TOKENS get no position (left out)."""
    ids = list(tokenizer.encode(problem + "\n"))
    ends, cursor = [], 0
    for step in steps:
        piece = tokenizer.encode(completion[cursor:step.end])
        cursor = step.end
        ids.extend(piece)
        if piece and len(ids) <= MAX_TOKENS:
            ends.append(len(ids) - 1)
    rest = tokenizer.encode(completion[cursor:])
    ids.extend(rest)
    return ids[:MAX_TOKENS], ends




@torch.no_grad()
def step_scores(prm: ProcessRewardModel, tokenizer, problems: list[str], completions: list[str],
                steps: list[list[Step]], batch_size: int = 64) -> list[list[float]]:
    """P(step correct) for every step of every completion (an empty list for a completion without steps)."""
    prm.eval()
    device = next(prm.parameters()).device
    out: list[list[float]] = [[] for _ in completions]
    encoded = [encode_steps(tokenizer, p, c, s) for p, c, s in zip(problems, completions, steps)]
    order = [i for i in range(len(encoded)) if encoded[i][1]]
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, mask = right_padded([encoded[i][0] for i in chunk], tokenizer.pad_id, device)
        probs = torch.sigmoid(prm(ids, mask))
        for row, i in enumerate(chunk):
            out[i] = probs[row, encoded[i][1]].tolist()
    return out
