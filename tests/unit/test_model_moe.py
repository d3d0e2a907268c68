"""DeepSeekMoE: routing, group limits, gate weights, dispatch, balance loss and aux-loss-free bias updates."""
import pytest
import torch

from r1model.model import DeepSeekV3, ModelConfig
from r1model.model.moe import Gate, MoE


def tiny(**changes):
    return ModelConfig.preset("tiny", **changes)


def test_gate_weights_use_unbiased_scores_normalised_and_scaled():
    torch.manual_seed(0)
    gate = Gate(tiny(routed_scaling_factor=2.5))
    torch.nn.init.normal_(gate.weight, std=0.5)
    x = torch.randn(32, 128)
    weights, idx, scores = gate(x)
    assert torch.allclose(weights.sum(-1), torch.full((32,), 2.5), atol=1e-5)
    expected = scores.gather(1, idx) / scores.gather(1, idx).sum(-1, keepdim=True) * 2.5
    assert torch.allclose(weights, expected)


def test_bias_steers_selection_but_not_the_weight_formula():
    torch.manual_seed(0)
    gate = Gate(tiny(n_group=1, topk_group=1))
    torch.nn.init.normal_(gate.weight, std=0.5)
    x = torch.randn(64, 128)
    gate.e_score_correction_bias[3] = 10.0  # expert 3 always chosen
    weights, idx, scores = gate(x)
    assert bool((idx == 3).any(-1).all())
    assert torch.allclose(weights, scores.gather(1, idx) / scores.gather(1, idx).sum(-1, keepdim=True))


def test_group_limited_routing_never_picks_a_masked_group_even_with_negative_biased_scores():
    torch.manual_seed(0)
    cfg = tiny(n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=3)
    gate = Gate(cfg)
    torch.nn.init.normal_(gate.weight, std=1.0)
    gate.e_score_correction_bias.fill_(-5.0)  # every biased score negative: 0.0 masking would fail here
    x = torch.randn(256, 128)
    _, idx, scores = gate(x)
    biased = (scores + gate.e_score_correction_bias).view(256, 4, 2)
    group_scores = biased.topk(2, dim=-1).values.sum(-1)
    kept = group_scores.topk(2, dim=-1).indices  # (N, 2)
    chosen_groups = idx // 2
    assert bool((chosen_groups[..., None] == kept[:, None, :]).any(-1).all())
    # with transformers' old 0.0 fill, the masked experts (score 0.0 > -4.x) would win:
    zero_filled = biased.masked_fill(~torch.zeros(256, 4, dtype=torch.bool).scatter_(1, kept, True)[..., None], 0.0)
    wrong = zero_filled.flatten(1).topk(3, dim=-1).indices // 2
    assert not bool((wrong[..., None] == kept[:, None, :]).any(-1).all())


def test_batched_dispatch_equals_a_per_token_reference():
    torch.manual_seed(0)
    moe = MoE(tiny()).eval()
    torch.nn.init.normal_(moe.gate.weight, std=0.5)
    x = torch.randn(2, 5, 128)
    out, _ = moe(x)
    weights, idx, _ = moe.gate(x.reshape(-1, 128))
    ref = []
    for n, token in enumerate(x.reshape(-1, 128)):
        y = moe.shared_experts(token)
        for k in range(idx.shape[1]):
            y = y + weights[n, k] * moe.experts[int(idx[n, k])](token)
        ref.append(y)
    assert torch.allclose(out.reshape(-1, 128), torch.stack(ref), atol=1e-5)


def test_sequence_balance_loss_is_alpha_when_affinities_are_uniform():
    moe = MoE(tiny(seq_aux_loss_alpha=0.01)).train()
    torch.nn.init.zeros_(moe.gate.weight)  # all s_i = 0.5: P_i = 1/N_r, sum_i f_i = N_r
    _, aux = moe(torch.randn(3, 7, 128))
    assert aux.item() == pytest.approx(0.01, rel=1e-5)
    _, no_aux = MoE(tiny(seq_aux_loss_alpha=0.0)).train()(torch.randn(3, 7, 128))
    assert no_aux.item() == 0.0


def test_padding_tokens_are_not_counted_as_load():
    moe = MoE(tiny()).train()
    torch.nn.init.normal_(moe.gate.weight, std=0.5)
    mask = torch.tensor([[False, False, True, True]])
    moe(torch.randn(1, 4, 128), mask)
    assert moe.gate.tokens_per_expert.sum().item() == 2 * 2  # 2 real tokens x top-2


def test_bias_update_moves_a_skewed_router_towards_balance():
    torch.manual_seed(0)
    model = DeepSeekV3(tiny(bias_update_speed=0.01)).train()
    for _, moe in model.moe_layers():  # skew: experts 0 and 1 attract every token
        with torch.no_grad():
            moe.gate.weight[:2] += 0.5 * moe.gate.weight.new_ones(128)
    ids = torch.randint(3, 103, (8, 32))
    violations = []
    for _ in range(60):
        with torch.no_grad():
            model(ids)
        violations.append(model.expert_load_stats()["moe/max_violation"])
        model.update_expert_bias()
    first_gate = model.layers[1].mlp.gate
    assert violations[0] > 1.5
    assert violations[-1] < 0.5 * violations[0]
    assert first_gate.e_score_correction_bias[:2].max() < first_gate.e_score_correction_bias[2:].min()
    stats = model.expert_load_stats()
    assert {"moe/max_violation", "moe/layer1/max_violation", "moe/layer3/max_violation"} <= set(stats)


def test_generation_forwards_do_not_count_load():
    model = DeepSeekV3(tiny()).eval()
    model(torch.randint(0, 103, (2, 6)))
    assert model.expert_load_stats() == {}
