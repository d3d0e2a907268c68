"""Self-speculative decoding with the MTP module: exact for greedy, rejection-corrected for sampling."""
import pytest
import torch

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
from r1model.generation import BuiltinEngine, SamplingParams
from r1model.generation.speculative import SpeculativeEngine, accept_or_resample


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained briefly on a repeating pattern, so the MTP module drafts well."""
    torch.manual_seed(0)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny"))
    text = "0123456789abcdef" * 8
    data = torch.tensor(tok.encode(text))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(50):
        starts = torch.randint(0, len(data) - 33, (8,))
        batch = torch.stack([data[s:s + 32] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_expert_bias()
    prompts = [tok.encode("0123"), tok.encode("89abcdef01"), tok.encode("cdef")]
    return model.eval(), tok, prompts


def test_rejection_correction_reproduces_the_target_distribution():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.2, 0.2, 0.1, 0.0])
    q = torch.tensor([0.1, 0.1, 0.3, 0.3, 0.2])
    n = 200_000
    draft = torch.multinomial(q.expand(n, 5), 1, replacement=True, generator=g).squeeze(1)
    accepted, token = accept_or_resample(p.expand(n, 5), q.expand(n, 5), draft, g)
    freq = torch.bincount(token, minlength=5).float() / n
    assert torch.allclose(freq, p, atol=0.005)
    expected_acceptance = torch.minimum(p, q).sum()  # sum_x min(p(x), q(x))
    assert accepted.float().mean().item() == pytest.approx(expected_acceptance.item(), abs=0.005)


def test_greedy_speculative_equals_plain_greedy_and_accepts_drafts(trained):
    model, tok, prompts = trained
    params = SamplingParams(temperature=0, max_new_tokens=40)
    plain = BuiltinEngine(model, tok).generate(prompts, params)
    engine = SpeculativeEngine(model, tok)
    spec = engine.generate(prompts, params)
    assert [c.token_ids for c in spec] == [c.token_ids for c in plain]
    assert [c.finish_reason for c in spec] == [c.finish_reason for c in plain]
    for a, b in zip(spec, plain):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)
        assert torch.allclose(torch.tensor(a.entropies), torch.tensor(b.entropies), atol=1e-4)
    assert engine.last_stats.extras["acceptance"] > 0.5


def test_sampled_speculative_logprobs_equal_teacher_forced_and_are_seeded(trained):
    model, tok, prompts = trained
    engine = SpeculativeEngine(model, tok)
    params = SamplingParams(temperature=0.8, top_k=10, max_new_tokens=30, seed=4)
    a = engine.generate(prompts, params)
    b = engine.generate(prompts, params)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    for c in a:
        ids = torch.tensor([c.prompt_ids + c.token_ids])
        logp = (model(ids).logits[0, len(c.prompt_ids) - 1:-1] / 0.8).log_softmax(-1)
        expected = logp.gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
        assert len(c.token_ids) <= 30
        assert torch.allclose(expected, torch.tensor(c.logprobs), atol=1e-4)
        # each token's entropy is the main model's (tempered), as the plain engine reports it, so a GRPO
        # update on this engine may skip zero-advantage rows (r1model.train.grpo_trainer)
        assert torch.allclose(-(logp.exp() * logp).sum(-1), torch.tensor(c.entropies), atol=1e-4)


def test_speculative_engine_needs_an_mtp_module():
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny", num_nextn_predict_layers=0))
    with pytest.raises(ValueError, match="^num_nextn_predict_layers: "):
        SpeculativeEngine(model, tok).generate([[5, 6]], SamplingParams(max_new_tokens=3))


def test_a_grpo_step_on_speculative_rollouts_reports_acceptance_and_skips_zero_advantage_rows(tmp_path, monkeypatch):
    from r1model.events import EventWriter
    from r1model.train import grpo_trainer, modeling
    from r1model.train.config import validate_run_config
    from r1model.train.context import RunContext
    from r1model.train.data import DataSource

    def trainer_for(engine: str, run_dir):
        config = validate_run_config({
            "model": "tiny", "template": "mini", "datasets": [{"task": "addition", "difficulty": {"digits": 1}}],
            "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 8, "beta": 0.0, "rollout_engine": engine},
        })
        ctx = RunContext(config, run_dir, EventWriter(run_dir), torch.device("cpu"))
        model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
        return grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config))

    real_rewards = grpo_trainer.compute_rewards

    def rewards(texts, *args, **kwargs):  # an untrained model earns nothing: totals 1, 0, ½, ½ in each group
        _, components = real_rewards(texts, *args, **kwargs)
        return [(1.0, 0.0, 0.5, 0.5)[i % 4] for i in range(len(texts))], components

    monkeypatch.setattr(grpo_trainer, "compute_rewards", rewards)
    trainer = trainer_for("speculative", tmp_path / "spec")
    assert isinstance(trainer.engine, SpeculativeEngine)
    forwarded, advantages = [], []
    real_micro, real_update = trainer._micro_batches, trainer._update
    trainer._micro_batches = lambda rows, *a: forwarded.extend(rows) or real_micro(rows, *a)
    trainer._update = lambda step, rows, p, c, adv: advantages.extend(adv.tolist()) or real_update(step, rows, p, c, adv)
    values = trainer.step(1)
    assert 0 <= values["rollout/draft_acceptance"] <= 1 and values["entropy"] > 0
    # the engine reports every token's entropy, so (β = 0) the rows with advantage 0 skip the forward
    assert sorted(forwarded) == [i for i, a in enumerate(advantages) if a != 0] == [0, 1, 4, 5]
    assert "rollout/draft_acceptance" not in trainer_for("builtin", tmp_path / "plain").step(1)


def test_speculative_rollouts_need_an_mtp_module_named_by_field(tmp_path):
    from r1model.train import modeling

    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny", num_nextn_predict_layers=0))
    with pytest.raises(ValueError, match="^sampling.engine: "):
        modeling.make_engine(model, tok, "speculative")
