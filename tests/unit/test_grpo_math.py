"""GRPO maths against hand-computed numbers (r1model.train.grpo)."""
import math

import pytest
import torch

from r1model.train.grpo import aggregate, group_advantages, k3_kl, policy_loss, token_logprobs, zero_std_groups

torch.set_num_threads(1)


def test_advantages_of_one_correct_in_four_match_hand_computation():
    # mean 0.25; sample std sqrt(0.75 / 3) = 0.5
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), group_size=4, eps=1e-4)
    assert adv.tolist() == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001])


def test_advantages_are_computed_per_group_not_over_the_batch():
    adv = group_advantages(torch.tensor([1.0, 0.0, 3.0, 5.0]), group_size=2, eps=0.0)
    # group (1, 0): mean .5, std sqrt(.5); group (3, 5): mean 4, std sqrt(2)
    assert adv.tolist() == pytest.approx([0.5 / math.sqrt(0.5), -0.5 / math.sqrt(0.5), -1 / math.sqrt(2), 1 / math.sqrt(2)])


def test_all_equal_rewards_give_zero_advantage_and_no_nan():
    adv = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), group_size=3)
    assert not torch.isnan(adv).any()
    assert adv.tolist() == [0.0] * 6
    assert zero_std_groups(torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0]), 3).tolist() == [True, False]


def test_advantage_scaling_none_only_centres():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), group_size=4, scaling="none")
    assert adv.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_advantages_reject_a_batch_not_made_of_whole_groups():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(5), group_size=4)


def test_k3_kl_is_zero_when_policy_equals_reference_and_positive_otherwise():
    logp = torch.log(torch.tensor([0.5, 0.1, 0.9]))
    assert k3_kl(logp, logp).tolist() == [0.0, 0.0, 0.0]
    kl = k3_kl(torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25])))
    # Δ = log(0.25/0.5) = −log 2: 0.5 + log 2 − 1
    assert kl.item() == pytest.approx(0.5 + math.log(2) - 1)
    random = k3_kl(torch.randn(1000), torch.randn(1000))
    assert (random >= 0).all()


TOKEN_LOSS = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])


def test_grpo_aggregation_is_the_mean_of_sequence_means():
    assert aggregate(TOKEN_LOSS, MASK, "grpo").item() == pytest.approx((6 / 3 + 4 / 1) / 2)


def test_dapo_aggregation_is_the_token_mean_over_the_batch():
    assert aggregate(TOKEN_LOSS, MASK, "dapo").item() == pytest.approx(10 / 4)


def test_dr_grpo_aggregation_divides_by_a_constant():
    assert aggregate(TOKEN_LOSS, MASK, "dr_grpo", max_new_tokens=4).item() == pytest.approx(10 / (2 * 4))
    with pytest.raises(ValueError):
        aggregate(TOKEN_LOSS, MASK, "dr_grpo")


def test_unknown_aggregation_is_an_error():
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        aggregate(TOKEN_LOSS, MASK, "mean")


def _toy(ratios, advantages):
    old = torch.zeros(len(ratios), 1)
    logp = torch.log(torch.tensor(ratios)).unsqueeze(1).requires_grad_(True)
    return logp, old, torch.tensor(advantages), torch.ones(len(ratios), 1)


def test_policy_loss_clips_the_ratio_in_the_direction_of_the_advantage():
    # token 1: ρ 1.5, A +1 → clipped to 1.2; token 2: ρ 0.5, A −1 → clipped to 0.8; token 3: ρ 1, A +1
    logp, old, adv, mask = _toy([1.5, 0.5, 1.0], [1.0, -1.0, 1.0])
    loss, stats = policy_loss(logp, old, adv, mask, epsilon_low=0.2, epsilon_high=0.2, aggregation="dapo")
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 1.0) / 3)
    assert stats.clip_high == pytest.approx(1 / 3)
    assert stats.clip_low == pytest.approx(1 / 3)
    assert stats.clip_region == pytest.approx(2 / 3)
    loss.backward()
    # clipped tokens carry no gradient; the unclipped one carries −A·ρ/3
    assert logp.grad.squeeze(1).tolist() == pytest.approx([0.0, 0.0, -1 / 3])


def test_clip_higher_leaves_a_ratio_inside_epsilon_high_unclipped():
    logp, old, adv, mask = _toy([1.25], [1.0])
    loss, stats = policy_loss(logp, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx(-1.25)
    assert stats.clip_high == 0.0


def test_ratio_clipping_does_not_hold_back_a_ratio_moving_against_the_advantage():
    # A > 0 and ρ below 1 − ε: min() keeps the unclipped (worse) value, gradient flows
    logp, old, adv, mask = _toy([0.5], [1.0])
    loss, stats = policy_loss(logp, old, adv, mask)
    assert loss.item() == pytest.approx(-0.5)
    assert stats.clip_low == 0.0


def test_on_policy_loss_is_minus_the_mean_advantage_and_kl_adds_beta_times_k3():
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.25, 0.5], [0.5, 0.5]]))
    adv = torch.tensor([1.0, -0.5])
    mask = torch.ones(2, 2)
    loss, stats = policy_loss(logp, logp.detach(), adv, mask, beta=0.1, ref_logp=ref, aggregation="grpo")
    k3 = 0.5 + math.log(2) - 1
    assert loss.item() == pytest.approx(((-1.0 * 2 + 0.1 * k3) / 2 + 0.5) / 2)
    assert stats.kl == pytest.approx(k3 / 4)
    assert stats.ratio_mean == pytest.approx(1.0)


def test_kl_ignores_padding_where_the_policy_gives_the_pad_token_almost_no_probability():
    """Off the mask the reference log-probs are 0 and the policy's may be −100: exp(100) overflows float32,
    and inf·0 in the masked sum (or in backward) was NaN. The padded position must add nothing."""
    logp = torch.tensor([[-1.0, -100.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0]])
    loss, stats = policy_loss(logp, logp.detach(), torch.tensor([1.0]), mask, beta=1e-3, ref_logp=ref)
    # token 0: on-policy ρ = 1, A = 1 → −1; its KL is 0 (π = π_ref); token 1 is padding
    assert loss.item() == pytest.approx(-1.0)
    assert stats.kl == 0.0
    loss.backward()
    # d(−ρ·A)/d log π = −ρ·A = −1 at token 0; k3's derivative 1 − π_ref/π = 0 there; nothing from the padding
    assert logp.grad.tolist() == [[-1.0, 0.0]]


def test_k3_kl_is_zero_off_the_mask_even_where_exp_would_overflow():
    logp = torch.tensor([[-1.0, -100.0]])
    ref = torch.log(torch.tensor([[0.5, 1.0]]))
    kl = k3_kl(logp, ref, torch.tensor([[1.0, 0.0]]))
    delta = math.log(0.5) + 1.0
    assert kl[0].tolist() == pytest.approx([math.exp(delta) - delta - 1, 0.0])


def test_beta_without_reference_logprobs_is_an_error():
    logp, old, adv, mask = _toy([1.0], [1.0])
    with pytest.raises(ValueError, match="reference"):
        policy_loss(logp, old, adv, mask, beta=0.01)


def test_token_logprobs_use_the_sampling_temperature_and_give_entropy():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # softmax → (0.25, 0.75)
    logp, entropy = token_logprobs(logits, torch.tensor([[1]]))
    assert logp.item() == pytest.approx(math.log(0.75))
    assert entropy.item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    hot, _ = token_logprobs(logits, torch.tensor([[1]]), temperature=1e6)
    assert hot.item() == pytest.approx(math.log(0.5), abs=1e-5)
