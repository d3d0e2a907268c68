"""Rank-independent rollouts: each GRPO sample is seeded by its prompt's index in the step's global batch
(grpo_trainer.rollout_seeds) and drawn from its own stream (engine.RowGenerators), so a rank that samples
half the prompts gets exactly the completions one process gets for those prompts — whatever else shares
the batch, and whether rows leave the batch early."""
import pytest
import torch

from r1model.generation import BuiltinEngine, SamplingParams, SpeculativeEngine
from r1model.generation.engine import RowGenerators, categorical
from r1model.generation.vllm_engine import request_groups
from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
from r1model.train.grpo_trainer import rollout_seeds

G = 3


def test_rollout_seeds_of_the_ranks_shares_are_the_single_process_seeds():
    one = rollout_seeds(5, 2, 0, 4, G)
    assert len(one) == 12 and len(set(one)) == 12
    assert rollout_seeds(5, 2, 0, 2, G) + rollout_seeds(5, 2, 2, 2, G) == one  # rank 0, rank 1 of 2
    assert [rollout_seeds(5, 2, p, 1, G) for p in range(4)] == [one[p * G:(p + 1) * G] for p in range(4)]  # 4 ranks
    assert rollout_seeds(5, 3, 0, 4, G) != one and rollout_seeds(6, 2, 0, 4, G) != one  # per step, per run seed


def _halves(engine, prompts, params, seeds):
    """Completions of the whole batch, and of its two halves in separate calls (two ranks)."""
    whole = engine.generate(prompts, params, RowGenerators(seeds))
    half = len(prompts) // 2
    first = engine.generate(prompts[:half], params, RowGenerators(seeds[:half]))
    second = engine.generate(prompts[half:], params, RowGenerators(seeds[half:]))
    return whole, first + second


def _assert_same(whole, split):
    assert [c.token_ids for c in split] == [c.token_ids for c in whole]
    assert [c.finish_reason for c in split] == [c.finish_reason for c in whole]
    for a, b in zip(whole, split):
        torch.testing.assert_close(torch.tensor(b.logprobs), torch.tensor(a.logprobs), atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    texts = ["12+34=", "<think>", "a much longer prompt: 7*8=", "9-4="]
    prompts = [tok.encode(t) for t in texts for _ in range(G)]  # GRPO's layout: each prompt G times in a row
    return model, tok, prompts


@pytest.mark.parametrize("engine_class", [BuiltinEngine, SpeculativeEngine])
@pytest.mark.parametrize("temperature, top_p, top_k", [(1.0, 1.0, 0), (0.8, 0.9, 20)])
def test_a_ranks_half_of_the_batch_samples_what_the_whole_batch_samples(tiny, engine_class, temperature, top_p, top_k):
    model, tok, prompts = tiny
    # a few more stop tokens: rows finish early and leave the batch
    params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=16,
                            stop_token_ids=(5, 7, 11, 13))
    seeds = rollout_seeds(1, 1, 0, 4, G)
    engine = engine_class(model, tok)
    whole, split = _halves(engine, prompts, params, seeds)
    _assert_same(whole, split)
    assert {c.finish_reason for c in whole} == {"stop", "length"}  # rows left the batch mid-way
    assert len({tuple(c.token_ids) for c in whole[:G]}) > 1  # a prompt's G samples differ
    # one generator for the batch (the plain seed) is not rank-independent: the halves sample otherwise
    plain = engine.generate(prompts, SamplingParams(**{**params.__dict__, "seed": 3}))
    second = engine.generate(prompts[len(prompts) // 2:], SamplingParams(**{**params.__dict__, "seed": 3}))
    assert [c.token_ids for c in second] != [c.token_ids for c in plain[len(prompts) // 2:]]


def test_hf_engine_rows_are_rank_independent(tmp_path):
    pytest.importorskip("transformers")
    from r1model.generation.hf_engine import HFEngine
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train import modeling

    model, tokenizer = modeling.load_model(make_tiny_hf_model(tmp_path / "qwen", "qwen2"), torch.device("cpu"))
    texts = ["What is 2+3?", "Solve 3x + 4 = 19 for x, then add 12 and 30.", "7 * 8", "1 + 1"]
    prompts = [tokenizer.encode(modeling.prompt_text(tokenizer, t)) for t in texts for _ in range(G)]
    vocab = int(model.hf.config.vocab_size)
    params = SamplingParams(temperature=1.0, max_new_tokens=16, stop_token_ids=tuple(range(0, vocab, 16)))
    for lean in (True, False):
        whole, split = _halves(HFEngine(model, tokenizer, lean=lean), prompts, params, rollout_seeds(2, 1, 0, 4, G))
        _assert_same(whole, split)
        assert {c.finish_reason for c in whole} == {"stop", "length"}


def test_row_streams_sample_the_distribution_and_check_their_count(tiny):
    probs = torch.tensor([0.5, 0.0, 0.3, 0.2])
    n = 20_000
    draws = categorical(probs.expand(n, 4), RowGenerators(range(n)))
    freq = torch.bincount(draws, minlength=4).float() / n
    assert torch.allclose(freq, probs, atol=0.015) and freq[1] == 0
    model, tok, prompts = tiny
    with pytest.raises(ValueError, match="generator: 2 row streams for 12 prompts"):
        BuiltinEngine(model, tok).generate(prompts, SamplingParams(max_new_tokens=2), RowGenerators([1, 2]))


def test_vllm_requests_keep_a_prompts_seeds():
    """vLLM seeds a request's n samples s, s + 1, ...: a group whose rows' seeds run so is one request."""
    params = SamplingParams(seed=0)
    prompts = [[1], [1], [1], [2], [2], [2]]
    seeds = rollout_seeds(4, 1, 2, 2, G)  # rank 1 of 2: prompts 2 and 3 of the step
    assert request_groups(params, RowGenerators(seeds), prompts) == [([1], [0, 1, 2], seeds[0]), ([2], [3, 4, 5], seeds[3])]
    shuffled = [seeds[1], seeds[0], seeds[2], *seeds[3:]]  # not consecutive: one request per row
    assert request_groups(params, RowGenerators(shuffled), prompts)[:3] == [([1], [0], seeds[1]), ([1], [1], seeds[0]),
                                                                             ([1], [2], seeds[2])]
    assert request_groups(SamplingParams(seed=10), None, prompts) == [([1], [0, 1, 2], 10), ([2], [3, 4, 5], 13)]
