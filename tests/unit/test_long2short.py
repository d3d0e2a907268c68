"""long2short (Kimi k1.5 §2.4): shortest-correct rejection sampling and model merging, on golden cases."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1model.train import filters

ROOT = Path(__file__).resolve().parents[2]


def sample(completion, status="correct", id="p1", **extra):
    return {"id": id, "problem": "3+4", "answer": "7", "prompt": "User: 3+4\nAssistant: ",
            "completion": completion, "status": status, "truncated": False, **extra}


LONG = "<think>3+4 is 3 then 4 more so 7</think><answer>7</answer>"
MID = "<think>3+4+0=7</think><answer>7</answer>"
SHORT = "<think></think><answer>7</answer>"


# ------------------------------------------------------------------------------------------ shortest correct

def test_the_shortest_correct_sample_of_each_problem_is_kept():
    samples = [sample(LONG), sample(MID), sample("<think></think><answer>8</answer>", status="wrong"),  # wrong, shorter
               sample(MID, id="p2"), sample(LONG, id="p2"),
               sample(SHORT, id="p3", status="wrong")]  # p3 has no correct sample: left out
    chosen = filters.select_shortest_correct(samples)
    assert [(s["id"], s["completion"]) for s in chosen] == [("p1", MID), ("p2", MID)]


def test_shortest_is_measured_in_tokens_when_recorded_and_ties_go_to_the_first():
    # by characters LONG is longest; the recorded token counts say otherwise
    samples = [sample(MID, tokens=20), sample(LONG, tokens=9), sample(SHORT, tokens=9)]
    assert filters.select_shortest_correct(samples) == [samples[1]]
    assert filters.sample_length(sample(MID)) == len(MID)  # no tokens: characters


def test_shortest_correct_applies_the_other_filters_too():
    cut = {**sample(SHORT), "truncated": True}
    mixed = sample("<think>三+4</think><answer>7</answer>")
    malformed = sample("<answer>7</answer>")
    assert filters.select_shortest_correct([cut, mixed, malformed, sample(LONG)]) == [sample(LONG)]


def test_build_shortest_correct_writes_sft_rows(tmp_path):
    rollouts = tmp_path / "rollouts.jsonl"
    rows = [sample(LONG, tokens=12), sample(MID, tokens=8), sample(SHORT, tokens=5, status="wrong"),
            sample(MID, id="p2", tokens=8)]
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = filters.build_shortest_correct(rollouts, tmp_path / "data.jsonl")
    data = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert [(r["id"], r["completion"]) for r in data] == [("p1", MID), ("p2", MID)]
    assert summary["rows"] == 2 and summary["mean_length"] == 8 and summary["mean_length_correct"] == (12 + 8 + 8) / 3
    rollouts.write_text(json.dumps(sample(SHORT, status="wrong")) + "\n")
    with pytest.raises(ValueError, match="no shortest-correct data"):
        filters.build_shortest_correct(rollouts, tmp_path / "none.jsonl")


# ------------------------------------------------------------------------------------------ merging

def _folder(path: Path, tensors: dict, config: dict | None = None) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {"model_type": "toy"}))
    (path / "tokenizer.json").write_text("{}")
    (path / "trainer_state.json").write_text("{}")
    save_file(tensors, str(path / "model.safetensors"))
    return path


def test_merge_averages_every_tensor_as_computed_by_hand(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from r1model.train.merge import merge_checkpoints

    a = _folder(tmp_path / "a", {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.0, 10.0]),
                                 "count": torch.tensor([3], dtype=torch.int64)})
    b = _folder(tmp_path / "b", {"w": torch.tensor([[3.0, 2.0], [-1.0, 0.0]]), "b": torch.tensor([4.0, 20.0]),
                                 "count": torch.tensor([3], dtype=torch.int64)})
    out = merge_checkpoints(a, b, tmp_path / "half")
    merged = load_file(str(out / "model.safetensors"))
    assert merged["w"].tolist() == [[2.0, 2.0], [1.0, 2.0]] and merged["b"].tolist() == [2.0, 15.0]
    assert merged["count"].tolist() == [3]
    # weight 0.25 of A: 0.25·1 + 0.75·3 = 2.5, 0.25·0 + 0.75·4 = 3, 0.25·10 + 0.75·20 = 17.5
    quarter = load_file(str(merge_checkpoints(a, b, tmp_path / "quarter", weight=0.25) / "model.safetensors"))
    assert quarter["w"][0, 0].item() == 2.5 and quarter["b"].tolist() == [3.0, 17.5]
    assert (out / "config.json").read_text() == (a / "config.json").read_text() and (out / "tokenizer.json").is_file()
    assert not (out / "trainer_state.json").exists()
    assert json.loads((out / "merge.json").read_text())["weight"] == 0.5


def test_merge_refuses_different_shapes_naming_the_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    from r1model.train.merge import MergeError, merge_checkpoints

    a = _folder(tmp_path / "a", {"layer.0.w": torch.zeros(2, 3), "layer.1.w": torch.zeros(4)})
    b = _folder(tmp_path / "b", {"layer.0.w": torch.zeros(2, 3), "layer.1.w": torch.zeros(5)})
    with pytest.raises(MergeError, match=r"layer\.1\.w has shape \(4,\) in the first checkpoint and \(5,\)"):
        merge_checkpoints(a, b, tmp_path / "out")
    c = _folder(tmp_path / "c", {"layer.0.w": torch.zeros(2, 3)})
    with pytest.raises(MergeError, match=r"layer\.1\.w is only in the first"):
        merge_checkpoints(a, c, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_merge_cli_writes_a_loadable_model_of_two_checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    from r1model.model.checkpoint import hf_state_dict, read_weights
    from r1model.train import modeling
    from r1model.train.config import ModelSpec

    torch.set_num_threads(1)
    spec = ModelSpec(source="tiny", overrides={"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
                                               "num_hidden_layers": 1, "num_attention_heads": 2, "q_lora_rank": 16,
                                               "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8,
                                               "v_head_dim": 8, "num_nextn_predict_layers": 0})
    for seed, name in ((0, "long"), (1, "short")):
        model, tokenizer = modeling.build_model(spec, torch.device("cpu"), seed=seed)
        modeling.save_model(model, tokenizer, tmp_path / name)
    proc = subprocess.run([sys.executable, "-m", "r1model", "merge", str(tmp_path / "long"), str(tmp_path / "short"),
                           "--weight", "0.5", "--out", str(tmp_path / "merged")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    long, short, merged = (read_weights(tmp_path / n) for n in ("long", "short", "merged"))
    for name in long:
        assert torch.allclose(merged[name], (long[name] + short[name]) / 2)
    model, _ = modeling.load_model(tmp_path / "merged", torch.device("cpu"))  # the built-in model loads it
    loaded = hf_state_dict(model)
    assert all(torch.equal(loaded[name], merged[name]) for name in merged)
    bad = subprocess.run([sys.executable, "-m", "r1model", "merge", str(tmp_path / "long"), str(tmp_path / "nowhere"),
                          "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "no config.json" in bad.stderr
