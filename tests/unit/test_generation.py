"""BuiltinEngine: seeded, ragged prompts, stops, logprobs equal to the trainer's teacher-forced pass."""
import copy

import pytest
import torch

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
from r1model.generation import BuiltinEngine, SamplingParams
from r1model.generation.engine import left_pad
from r1model.train.grpo import token_logprobs


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    prompts = [tok.encode("12+34="), tok.encode("<think>"), tok.encode("a much longer prompt: 7*8=")]
    return model, tok, prompts


def teacher_forced(model, prompts, completions, temperature):
    """(logprobs, entropies) (B, T) of the completions as GRPO computes them: the prompts encoded once,
    the right-padded completions scored after them (temperature 0 is scored as 1, like greedy sampling)."""
    ids, mask = left_pad(prompts, 0, "cpu")
    width = max(len(c.token_ids) for c in completions)
    tail = torch.zeros(len(prompts), width, dtype=torch.long)
    tail_mask = torch.zeros_like(tail)
    for i, c in enumerate(completions):
        tail[i, :len(c.token_ids)] = torch.tensor(c.token_ids)
        tail_mask[i, :len(c.token_ids)] = 1
    logits = model.completion_logits(model.encode_prefix(ids, mask), torch.arange(len(prompts)), tail, tail_mask)
    return token_logprobs(logits, tail, temperature or 1.0)


def test_same_seed_same_completions_other_seed_differs(setup):
    model, tok, prompts = setup
    engine = BuiltinEngine(model, tok)
    a = engine.generate(prompts, SamplingParams(max_new_tokens=24, seed=1))
    b = engine.generate(prompts, SamplingParams(max_new_tokens=24, seed=1))
    c = engine.generate(prompts, SamplingParams(max_new_tokens=24, seed=2))
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert [x.token_ids for x in a] != [x.token_ids for x in c]
    assert all(x.prompt_ids == p for x, p in zip(a, prompts))


@pytest.mark.parametrize("temperature, top_p, top_k", [(1.0, 1.0, 0), (0.7, 0.9, 20), (0.0, 1.0, 0)])
def test_generation_logprobs_equal_teacher_forced_pass(setup, temperature, top_p, top_k):
    model, tok, prompts = setup
    params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=20, seed=5)
    completions = BuiltinEngine(model, tok).generate(prompts, params)
    logp, entropy = teacher_forced(model, prompts, completions, temperature)
    for i, c in enumerate(completions):
        n = len(c.token_ids)
        assert len(c.logprobs) == n
        assert torch.allclose(logp[i, :n], torch.tensor(c.logprobs), atol=1e-4)
        assert torch.allclose(entropy[i, :n], torch.tensor(c.entropies), atol=1e-4)  # of the tempered softmax
    assert bool((entropy >= 0).all())


def test_repeated_prompts_are_prefilled_once_and_sample_independently(setup):
    """GRPO sends each prompt G times: one prefill per distinct prompt, copies decode on their own."""
    model, tok, prompts = setup
    engine = BuiltinEngine(model, tok)
    repeated = [prompts[0]] * 3 + [prompts[2]] * 3
    prefills = []
    hook = model.register_forward_pre_hook(lambda m, args: prefills.append(args[0].shape) if args[0].shape[1] > 1 else None)
    try:
        sampled = engine.generate(repeated, SamplingParams(max_new_tokens=16, seed=3))
    finally:
        hook.remove()
    assert [shape[0] for shape in prefills] == [2]  # one prefill row per distinct prompt
    assert len({tuple(c.token_ids) for c in sampled[:3]}) > 1  # the copies did not share their samples
    greedy = engine.generate(repeated, SamplingParams(temperature=0, max_new_tokens=12))
    alone = [engine.generate([p], SamplingParams(temperature=0, max_new_tokens=12))[0] for p in (prompts[0], prompts[2])]
    assert [c.token_ids for c in greedy] == [alone[0].token_ids] * 3 + [alone[1].token_ids] * 3
    logp, _ = teacher_forced(model, repeated, sampled, 1.0)
    for i, c in enumerate(sampled):
        assert torch.allclose(logp[i, :len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-4)


def test_greedy_picks_the_argmax_of_the_teacher_forced_logits(setup):
    model, tok, prompts = setup
    completion = BuiltinEngine(model, tok).generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=8))[0]
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    logits = model(ids).logits[0, len(prompts[0]) - 1:-1]
    assert logits.argmax(-1).tolist() == completion.token_ids


def test_top_k_1_is_greedy(setup):
    model, tok, prompts = setup
    engine = BuiltinEngine(model, tok)
    greedy = engine.generate(prompts, SamplingParams(temperature=0, max_new_tokens=10))
    topk1 = engine.generate(prompts, SamplingParams(temperature=1.3, top_k=1, max_new_tokens=10, seed=9))
    assert [c.token_ids for c in greedy] == [c.token_ids for c in topk1]


class AlwaysToken(torch.nn.Module):
    """An output head that makes one token certain (test seam: replaces lm_head in a copy)."""

    def __init__(self, vocab_size, token):
        super().__init__()
        self.vocab_size, self.token = vocab_size, token

    def forward(self, h):
        logits = torch.zeros(*h.shape[:-1], self.vocab_size)
        logits[..., self.token] = 30.0
        return logits


def test_stops_on_answer_tag_and_reports_the_reason(setup):
    model, tok, prompts = setup
    answer_end = tok.token_id("</answer>")
    forced = copy.deepcopy(model)
    forced.lm_head = AlwaysToken(tok.vocab_size, answer_end)
    done = BuiltinEngine(forced, tok).generate(prompts, SamplingParams(max_new_tokens=5, seed=0))
    assert all(c.token_ids == [answer_end] and c.finish_reason == "stop" for c in done)
    assert done[0].text == "</answer>"
    forced.lm_head = AlwaysToken(tok.vocab_size, tok.eos_id)
    done = BuiltinEngine(forced, tok).generate(prompts, SamplingParams(max_new_tokens=5, seed=0))
    assert all(c.token_ids == [tok.eos_id] and c.finish_reason == "stop" and c.text == "" for c in done)


def test_length_finish_and_custom_stop_ids(setup):
    model, tok, prompts = setup
    engine = BuiltinEngine(model, tok)
    out = engine.generate(prompts, SamplingParams(temperature=0, max_new_tokens=6))
    for c in out:
        if c.finish_reason == "length":
            assert len(c.token_ids) == 6
        else:
            assert c.token_ids[-1] in (tok.eos_id, tok.token_id("</answer>"))
    first = out[0].token_ids[0]
    stopped = engine.generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=6, stop_token_ids=(first,)))
    assert stopped[0].token_ids == [first] and stopped[0].finish_reason == "stop"


@pytest.mark.parametrize("kwargs, field", [(dict(temperature=-1), "temperature"), (dict(top_p=0), "top_p"),
                                           (dict(top_k=-2), "top_k"), (dict(max_new_tokens=0), "max_new_tokens")])
def test_bad_sampling_params_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        SamplingParams(**kwargs)


def test_ignore_eos_runs_to_max_new_tokens(setup):
    model, tok, prompts = setup
    forced = copy.deepcopy(model)
    forced.lm_head = AlwaysToken(tok.vocab_size, tok.eos_id)
    out = BuiltinEngine(forced, tok).generate(prompts, SamplingParams(max_new_tokens=4, ignore_eos=True, seed=0))
    assert all(c.token_ids == [tok.eos_id] * 4 and c.finish_reason == "length" for c in out)


def test_generation_restores_training_mode_and_counts_no_load(setup):
    model, tok, prompts = setup
    model.train()
    before = [moe.gate.tokens_per_expert.clone() for _, moe in model.moe_layers()]
    try:
        BuiltinEngine(model, tok).generate(prompts, SamplingParams(max_new_tokens=3, seed=0))
        assert model.training
        after = [moe.gate.tokens_per_expert for _, moe in model.moe_layers()]
        assert all(torch.equal(a, b) for a, b in zip(before, after))
    finally:
        model.eval()


def test_generation_sees_weights_changed_in_place_by_the_optimizer(setup):
    """Fused AdamW updates weights in place without bumping version counters: nothing the engine keeps
    (stacked expert weights) may outlive one generate call."""
    _, tok, prompts = setup
    torch.manual_seed(1)
    model = DeepSeekV3(ModelConfig.preset("tiny"))
    engine = BuiltinEngine(model, tok)
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=9)
    engine.generate(prompts, params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    model(torch.tensor([prompts[0]]), labels=torch.tensor([prompts[0]])).loss.backward()
    optimizer.step()
    after = engine.generate(prompts, params)
    logp, _ = teacher_forced(model.eval(), prompts, after, 1.0)
    for i, c in enumerate(after):
        assert torch.allclose(logp[i, :len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-4)
