"""HFEngine's lean decode path (Llama-style models: preallocated key/value buffers, one-token steps over the
layers' own weights) against its generic path (the model's forward with transformers' cache), and its
inverse-CDF sampler against the distribution it samples."""
import pytest
import torch

pytest.importorskip("transformers")

from r1model.generation import SamplingParams  # noqa: E402
from r1model.generation.hf_engine import HFEngine, LeanDecoder, sample_with_entropy  # noqa: E402
from r1model.testing.fixtures import make_tiny_hf_model  # noqa: E402
from r1model.train import modeling  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def loaded(request, tmp_path_factory):
    folder = make_tiny_hf_model(tmp_path_factory.mktemp("hf") / request.param, request.param,
                                instruct=request.param == "qwen2")
    return modeling.load_model(folder, CPU)


def test_llama_style_models_take_the_lean_path(loaded):
    model, tokenizer = loaded
    assert LeanDecoder.supports(model.hf)
    assert modeling.make_engine(model, tokenizer).lean


@pytest.mark.parametrize("temperature, top_p, top_k", [(1.0, 1.0, 0), (0.7, 0.9, 20), (0.0, 1.0, 0)])
def test_lean_and_generic_paths_sample_the_same_completions(loaded, temperature, top_p, top_k):
    model, tokenizer = loaded
    texts = ["What is 2+3?", "Solve 3x + 4 = 19 for x, then add 12 and 30 to it please.", "7 * 8"]
    prompts = [tokenizer.encode(modeling.prompt_text(tokenizer, t)) for t in texts]
    prompts = [prompts[i % 3] for i in range(12)]  # ragged, each prompt 4 times
    # an extra stop token that the random model samples often, so rows finish early and leave the batch
    common = tokenizer.encode(" ")[0]
    params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=24, seed=7,
                            stop_token_ids=(common,))
    lean = HFEngine(model, tokenizer, lean=True).generate(prompts, params)
    generic = HFEngine(model, tokenizer, lean=False).generate(prompts, params)
    assert [c.token_ids for c in lean] == [c.token_ids for c in generic]
    assert [c.finish_reason for c in lean] == [c.finish_reason for c in generic]
    if temperature:  # some rows stopped early (and left the batch), some ran to the length
        assert {c.finish_reason for c in lean} == {"stop", "length"}
    for a, b in zip(lean, generic):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)
        assert torch.allclose(torch.tensor(a.entropies), torch.tensor(b.entropies), atol=1e-4)
    with torch.no_grad():
        forced, _ = modeling.completion_logprobs(model, [c.prompt_ids for c in lean], [c.token_ids for c in lean],
                                                 tokenizer.pad_id, temperature)
    for c, lp in zip(lean, forced):
        assert torch.allclose(torch.tensor(c.logprobs), torch.tensor(lp), atol=1e-4)


def test_inverse_cdf_sampling_follows_the_distribution_and_never_draws_a_filtered_token():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    tok, lp, ent = sample_with_entropy(logits, SamplingParams(temperature=1.0), g)
    freq = torch.bincount(tok, minlength=5).float() / len(tok)
    assert torch.allclose(freq, logits[0].softmax(-1), atol=0.015)
    assert torch.allclose(lp, logits[0].log_softmax(-1)[tok])
    tok, _, _ = sample_with_entropy(logits, SamplingParams(temperature=1.0, top_k=2), g)
    assert set(tok.tolist()) == {0, 1}
