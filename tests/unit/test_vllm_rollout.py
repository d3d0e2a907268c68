"""The vLLM rollout engine's parts that need no vLLM: truncated importance sampling (hand-computed), the
logprob-agreement check with a fake engine, the completions-API request/response mapping, the config."""
import math
from dataclasses import replace

import pytest
import torch

from r1model.rollout.engine import Completion, SamplingParams
from r1model.rollout.logprob_check import LogprobCheck, LogprobMismatch, logprob_diff
from r1model.train.grpo import policy_loss, tis_weights

torch.set_num_threads(1)


# --- truncated importance sampling ---------------------------------------------------------------
def test_tis_weight_is_the_ratio_capped_and_one_off_the_mask():
    train = torch.tensor([[math.log(0.5), math.log(0.9), math.log(0.1)]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.1), math.log(0.2)]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    w = tis_weights(train, sampler, mask, cap=2.0)
    # 0.5/0.25 = 2 (at the cap), 0.9/0.1 = 9 -> capped at 2, off the mask 1
    assert w[0].tolist() == pytest.approx([2.0, 2.0, 1.0])
    w = tis_weights(train, sampler, torch.ones(1, 3), cap=10.0)
    assert w[0].tolist() == pytest.approx([2.0, 9.0, 0.5])
    assert not w.requires_grad
    with pytest.raises(ValueError):
        tis_weights(train, sampler, mask, cap=0)


def test_policy_loss_with_is_weight_matches_hand_computation():
    # on-policy (ρ = 1), one sequence of two tokens, A = 1, grpo aggregation: loss = −mean_t(w_t · 1)
    logp = torch.tensor([[math.log(0.5), math.log(0.4)]], requires_grad=True)
    old = logp.detach().clone()
    adv, mask = torch.tensor([1.0]), torch.ones(1, 2)
    w = torch.tensor([[0.5, 2.0]])
    loss, _ = policy_loss(logp, old, adv, mask, is_weight=w)
    assert float(loss.detach()) == pytest.approx(-(0.5 + 2.0) / 2)
    loss.backward()
    # d/dlogp of −w·exp(logp − old)·A / T at ρ = 1 is −w/T
    assert logp.grad[0].tolist() == pytest.approx([-0.25, -1.0])
    plain, _ = policy_loss(logp.detach(), old, adv, mask)
    assert float(plain) == pytest.approx(-1.0)


def test_is_weight_leaves_the_kl_term_alone():
    logp = torch.tensor([[math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25)]])
    adv, mask = torch.tensor([0.0]), torch.ones(1, 1)  # A = 0: only the KL term remains
    a, _ = policy_loss(logp, logp, adv, mask, beta=0.1, ref_logp=ref)
    b, _ = policy_loss(logp, logp, adv, mask, beta=0.1, ref_logp=ref, is_weight=torch.tensor([[3.0]]))
    assert float(a) == pytest.approx(float(b)) and float(a) > 0


# --- the logprob-agreement check ---------------------------------------------------------------------
def _teacher(prompts, completions):
    """The 'trainer': logprob of token t is −t/10."""
    return [[-t / 10 for t in c] for c in completions]


class FakeEngine:
    """Returns the trainer's logprobs perturbed by `offset` (a stale or lower-precision engine)."""

    def __init__(self, offset):
        self.offset = offset

    def generate(self, prompts, params, generator=None):
        out = []
        for i, p in enumerate(prompts):
            tokens = [1 + i, 2 + i, 3]
            out.append(Completion(list(p), tokens, "", [-t / 10 + self.offset * (-1) ** k for k, t in enumerate(tokens)],
                                  "stop"))
        return out


def test_logprob_diff_is_mean_and_max_abs():
    assert logprob_diff([[0.0, -1.0], [-2.0]], [[0.1, -1.3], [-2.0]]) == pytest.approx((0.4 / 3, 0.3))
    with pytest.raises(ValueError):
        logprob_diff([[0.0]], [[0.0, 1.0]])


def test_check_reports_the_diff_and_runs_at_start_and_every_k_steps():
    check = LogprobCheck(interval=3, max_diff=0.1)
    engine = FakeEngine(0.02)
    done = [s for s in range(5, 12) if check(s, engine.generate([[7], [8]], SamplingParams()), _teacher)]
    assert done == [5, 6, 9]  # the first step seen (a resume at 5 too), then every 3rd
    values = LogprobCheck(interval=3)(1, engine.generate([[7]], SamplingParams()), _teacher)
    assert values["rollout/logprob_diff"] == pytest.approx(0.02)
    assert values["rollout/logprob_diff_max"] == pytest.approx(0.02)


def test_check_refuses_to_go_on_past_the_threshold():
    check = LogprobCheck(interval=1, max_diff=0.1, engine_name="vLLM")
    check(1, FakeEngine(0.05).generate([[7]], SamplingParams()), _teacher)
    with pytest.raises(LogprobMismatch, match=r"vLLM's logprobs differ .* by 0\.5 .*logprob_max_diff = 0\.1"):
        check(2, FakeEngine(0.5).generate([[7]], SamplingParams()), _teacher)
    # max_diff 0: a report, never a stop
    assert LogprobCheck(max_diff=0)(1, FakeEngine(5.0).generate([[7]], SamplingParams()), _teacher)[
        "rollout/logprob_diff"] == pytest.approx(5.0)
