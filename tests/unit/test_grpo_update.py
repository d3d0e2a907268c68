"""The GRPO update shares each prompt across its group and packs the completions: it must equal an update
computed the plain way, one forward of every prompt+completion — both this test's own and the trainer's
one-pass mode (what it runs under ZeRO-3)."""
import pytest
import torch

import r1model.train.grpo_trainer as grpo_trainer
from r1model.events import EventWriter
from r1model.train import modeling
from r1model.train.config import validate_run_config
from r1model.train.context import RunContext
from r1model.train.data import DataSource
from r1model.train.grpo import token_logprobs

torch.set_num_threads(1)
SMALL_MODEL = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
               "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
               "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0}


def _plain_logprobs(trainer, prompts_of_rows):
    """A stand-in for GRPOTrainer._logprobs that runs every prompt+completion through model.forward."""
    def logprobs(model, prefix, group, ids, mask):
        rows = [prompts_of_rows[int(g)] for g in group]
        width = max(len(p) for p in rows) + ids.shape[1]
        full = torch.zeros(len(rows), width, dtype=torch.long)
        attention = torch.zeros_like(full)
        for r, p in enumerate(rows):
            n = int(mask[r].sum())
            full[r, :len(p) + n] = torch.cat([torch.tensor(p), ids[r, :n]])
            attention[r, :len(p) + n] = 1
        logits = model(full, attention_mask=attention).logits
        # completion token j of row r is predicted at position len(prompt) - 1 + j
        index = torch.tensor([[len(p) - 1 + j for j in range(ids.shape[1])] for p in rows]).clamp(max=width - 1)
        picked = logits.gather(1, index[..., None].expand(-1, -1, logits.shape[-1]))
        return token_logprobs(picked, ids, trainer.sampling.temperature)
    return logprobs


def _update_once(tmp_path, aggregation, plain, one_pass=False):
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "beta": 0.1, "num_iterations": 2,
                 "minibatches": 2, "loss_aggregation": aggregation, "learning_rate": 1e-2},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=modeling.frozen_copy(model))
    prompts = [tokenizer.encode(f"User: {a}+{a}\nAssistant: ") for a in (1, 22, 333, 4444) for _ in range(2)]
    trainer.shared_prefix = not one_pass
    if plain:  # the prompt batch of a minibatch lists its distinct prompts in row order
        real_micro = trainer._micro_batches

        def micro_batches(rows, rows_prompt, completions):
            prompt_batch, micros = real_micro(rows, rows_prompt, completions)
            distinct = list(dict.fromkeys(tuple(rows_prompt[i]) for i in rows))
            trainer._logprobs = _plain_logprobs(trainer, [list(p) for p in distinct])
            return prompt_batch, micros
        trainer._micro_batches = micro_batches
        trainer._encode = lambda model, prompt_batch: None
    lengths = [1, 12, 2, 11, 3, 10, 4, 9]  # very different lengths: packing and padding differ most
    completions = [type("C", (), {"token_ids": [5 + (k % 7) for k in range(n)]})() for n in lengths]
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 1.5])
    values = trainer._update(1, list(range(8)), prompts, completions, advantages)
    return values, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("aggregation,one_pass", [("grpo", False), ("dapo", False), ("dr_grpo", False),
                                                   ("grpo", True), ("dapo", True)])
def test_update_equals_plain_forwards_of_every_sequence(tmp_path, aggregation, one_pass):
    shared, params_a = _update_once(tmp_path / "a", aggregation, plain=False)
    plain, params_b = (_update_once(tmp_path / "b", aggregation, plain=False, one_pass=True) if one_pass
                       else _update_once(tmp_path / "b", aggregation, plain=True))
    for name in ("loss", "kl", "entropy", "grad_norm", "clip_ratio/low_mean", "clip_ratio/high_mean"):
        assert shared[name] == pytest.approx(plain[name], rel=1e-4, abs=1e-6), name
    # after 4 AdamW steps (lr 1e-2) the weights agree to a small fraction of one step: Adam's normalisation
    # magnifies float-rounding differences of near-zero gradients, nothing more
    assert max(float((a - b).abs().max()) for a, b in zip(params_a, params_b)) < 0.02 * 1e-2
    assert shared["kl"] > 0  # the second epoch moved the policy away from the reference


def _zero_advantage_update(tmp_path, with_entropies: bool):
    """β = 0; rows 2, 3, 6 have advantage exactly 0. With rollout entropies the trainer skips them."""
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "beta": 0.0, "num_iterations": 2,
                 "minibatches": 2, "loss_aggregation": "grpo", "learning_rate": 1e-2, "weight_decay": 0.1},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config))
    prompts = [tokenizer.encode(f"User: {a}+{a}\nAssistant: ") for a in (1, 22) for _ in range(4)]
    lengths = [1, 12, 2, 11, 3, 10, 4, 9]
    completions = []
    for n in lengths:
        c = type("C", (), {"token_ids": [5 + (k % 7) for k in range(n)]})()
        if with_entropies:
            c.entropies = [1.0] * n
        completions.append(c)
    forwarded = []
    real = trainer._micro_batches
    monkey = lambda rows, *a: forwarded.append(sorted(rows)) or real(rows, *a)  # noqa: E731
    trainer._micro_batches = monkey
    advantages = torch.tensor([1.0, -1.0, 0.0, 0.0, 2.0, -2.0, 0.0, 1.5])
    values = trainer._update(1, list(range(8)), prompts, completions, advantages)
    return values, [p.detach().clone() for p in model.parameters()], forwarded


def test_zero_advantage_rows_skip_the_forward_and_change_nothing(tmp_path):
    skipped, params_a, forwarded_a = _zero_advantage_update(tmp_path / "a", with_entropies=True)
    full, params_b, forwarded_b = _zero_advantage_update(tmp_path / "b", with_entropies=False)
    assert not any(i in rows for rows in forwarded_a for i in (2, 3, 6))  # never forwarded
    assert any(i in rows for rows in forwarded_b for i in (2, 3, 6))  # without rollout entropies they are
    for name in ("loss", "grad_norm", "clip_ratio/low_mean", "clip_ratio/high_mean"):
        assert skipped[name] == pytest.approx(full[name], rel=1e-4, abs=1e-6), name
    assert "entropy" not in skipped and full["entropy"] > 0  # the metric comes from the rollouts then
    assert max(float((a - b).abs().max()) for a, b in zip(params_a, params_b)) < 0.02 * 1e-2


def test_a_minibatch_of_only_zero_advantages_still_takes_the_optimizer_step(tmp_path):
    """Weight decay and Adam's momentum move the weights as they would with the zero gradient computed."""
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 2, "prompts_per_step": 1, "max_new_tokens": 4, "beta": 0.0,
                 "learning_rate": 1e-2, "weight_decay": 0.1},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config))
    before = [p.detach().clone() for p in model.parameters()]
    prompt = tokenizer.encode("User: 1+1\nAssistant: ")
    completions = [type("C", (), {"token_ids": [5, 6], "entropies": [0.5, 0.5]})() for _ in range(2)]
    values = trainer._update(1, [0, 1], [prompt, prompt], completions, torch.zeros(2))
    assert values["grad_norm"] == 0.0
    moved = [float((a - b.detach()).abs().max()) for a, b in zip(before, model.parameters()) if a.dim() >= 2]
    assert max(moved) > 0  # decoupled weight decay shrank the matrices


@pytest.mark.parametrize("iterations", [1, 2])
def test_update_with_kl_stays_finite_when_the_policy_pushes_the_pad_token_down(tmp_path, iterations):
    """The first padded position of a short completion holds the model's log-prob of the pad token after its
    last real token. A policy that learnt never to emit pad puts it near −200 there, while the reference's
    log-probs are 0 at padding: exp(0 − (−200)) overflowed, and the masked k3 became NaN (loss and grads)."""
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "beta": 0.1,
                 "num_iterations": iterations, "minibatches": iterations, "learning_rate": 1e-2},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=modeling.frozen_copy(model))
    pad = modeling.pad_id(tokenizer)
    shift = torch.zeros(model.config.vocab_size)
    shift[pad] = -200.0
    model.lm_head.register_forward_hook(lambda module, inputs, output: output + shift)  # the policy's pad logit only
    prompts = [tokenizer.encode(f"User: {a}+{a}\nAssistant: ") for a in (1, 22) for _ in range(4)]
    completions = [type("C", (), {"token_ids": [5 + (k % 7) for k in range(n)]})() for n in [1, 12, 2, 11, 3, 10, 4, 9]]
    assert all(pad not in c.token_ids for c in completions)
    before = [p.detach().clone() for p in model.parameters()]
    values = trainer._update(1, list(range(8)), prompts, completions, torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 1.5]))
    for name in ("loss", "kl", "grad_norm"):
        assert torch.isfinite(torch.tensor(values[name])), name
    assert values["grad_norm"] > 0 and values["kl"] >= 0
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_grpo_step_runs_on_the_bpe_preset_and_its_checkpoint_keeps_the_bpe_tokenizer(tmp_path, monkeypatch):
    """tiny-bpe: rollouts decode through the byte-level BPE, the language reward scores them, the update moves
    the weights, and the saved checkpoint loads back with the same tokenizer."""
    from r1model.model.config import BPE_VOCAB_SIZE, ModelConfig
    from r1model.model.deepseek_v3 import DeepSeekV3
    from r1model.model.tokenizer import R1Tokenizer

    config = validate_run_config({
        "model": {"source": "tiny-bpe", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "rewards": [{"name": "accuracy"}, {"name": "format"}, {"name": "language", "weight": 0.5}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 8, "beta": 0.1, "learning_rate": 1e-2},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model_config = ModelConfig.preset(config.model.source, **config.model.overrides)
    torch.manual_seed(0)
    model, tokenizer = DeepSeekV3(model_config), R1Tokenizer.for_config(model_config)
    assert (model.config.vocab_size, tokenizer.kind) == (BPE_VOCAB_SIZE, "bpe")
    scored = []
    real_rewards = grpo_trainer.compute_rewards

    def rewards_with_spread(texts, problems, weights, **kw):  # a random model earns nothing: spread the totals
        scored.append((list(texts), weights))
        totals, components = real_rewards(texts, problems, weights, **kw)
        return [t + 0.1 * i for i, t in enumerate(totals)], components
    monkeypatch.setattr(grpo_trainer, "compute_rewards", rewards_with_spread)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=modeling.frozen_copy(model))
    before = [p.detach().clone() for p in model.parameters()]
    values = trainer.step(1)
    (texts, weights), = scored
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts) and weights["language"] == 0.5
    assert torch.isfinite(torch.tensor(values["loss"])) and values["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    folder = trainer.save(1)
    loaded, loaded_tokenizer = modeling.load_model(folder, torch.device("cpu"))
    assert (loaded.config.tokenizer, loaded_tokenizer.kind, loaded_tokenizer.vocab_size) == ("bpe", "bpe", BPE_VOCAB_SIZE)


def _update_in_micro_batches(tmp_path, micro_batch_size):
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "beta": 0.1, "num_iterations": 2,
                 "minibatches": 2, "learning_rate": 1e-2, "micro_batch_size": micro_batch_size},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=modeling.frozen_copy(model))
    encoded, backwards, grads = [], [], []
    real_encode, real_backward, real_step = trainer._encode, trainer.stepper.backward, trainer.stepper.step
    trainer.stepper.step = lambda check: grads.append([p.grad.clone() for p in model.parameters()]) or real_step(check)
    trainer._encode = lambda model, prompts: encoded.append(len(prompts[0])) or real_encode(model, prompts)
    trainer.stepper.backward = lambda loss, last=True: backwards.append(loss is not None) or real_backward(loss, last)
    # 4 prompts of different lengths, 2 rows each; a minibatch of 4 rows holds 2 or more prompts
    prompts = [tokenizer.encode(f"User: {a}+{a}\nAssistant: ") for a in (1, 22, 333, 4444) for _ in range(2)]
    lengths = [1, 12, 2, 11, 3, 10, 4, 9]
    completions = [type("C", (), {"token_ids": [5 + (k % 7) for k in range(n)]})() for n in lengths]
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 1.5])
    values = trainer._update(1, list(range(8)), prompts, completions, advantages)
    return values, [p.detach().clone() for p in model.parameters()], grads[0], encoded, backwards


@pytest.mark.parametrize("size", [1, 3])
def test_an_update_in_micro_batches_equals_the_update_in_one(tmp_path, size):
    whole, params_a, grads_a, encoded_a, backwards_a = _update_in_micro_batches(tmp_path / "a", 0)
    split, params_b, grads_b, encoded_b, backwards_b = _update_in_micro_batches(tmp_path / "b", size)
    per_minibatch = -(-4 // size)  # 8 rows, 2 minibatches of 4
    assert backwards_a == [True] * 4 and backwards_b == [True] * 4 * per_minibatch  # 2 epochs × 2 minibatches
    # π_old and π_ref over 2 minibatches, then 2 epochs × 2 minibatches: each micro-batch runs only its prompts
    assert len(encoded_a) == 8 and len(encoded_b) == 8 * per_minibatch and max(encoded_b) <= size
    for name in ("loss", "kl", "grad_norm", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean"):
        assert split[name] == pytest.approx(whole[name], rel=1e-6, abs=1e-6), name
    assert max(float((a - b).abs().max()) for a, b in zip(grads_a, grads_b)) < 1e-6  # the first minibatch's gradient
    # after 4 AdamW steps (lr 1e-2): Adam's normalisation magnifies float rounding of near-zero gradients
    assert max(float((a - b).abs().max()) for a, b in zip(params_a, params_b)) < 0.02 * 1e-2
