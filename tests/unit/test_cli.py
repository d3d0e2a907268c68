"""`python -m r1model`: recipes, config validation and a 2-step aha-mini --quick end to end."""
import json

from r1model.__main__ import main
from r1model.events import read_events
from r1model.train.metrics import describe
from tests.trainer_cli import run_quick


def test_recipe_list_names_aha_mini(capsys):
    assert main(["recipe", "list"]) == 0
    assert "aha-mini" in capsys.readouterr().out


def test_recipe_show_prints_a_valid_config_with_the_seed(capsys):
    assert main(["recipe", "show", "aha-mini", "--quick", "--seed", "7"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["seed"] == 7 and config["kind"] == "grpo" and config["total_steps"] == 2


def test_unknown_recipe_is_a_usage_error(capsys, tmp_path):
    assert main(["recipe", "run", "nope", "--run-dir", str(tmp_path)]) == 2
    assert "aha-mini" in capsys.readouterr().err


def test_validate_config_lists_every_error_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kind": "grpo", "grpo": {"group_size": 0, "top_p": 3}, "seed": -1}))
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    for field in ("grpo.group_size", "sampling.top_p", "seed", "bad.json"):
        assert field in err
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"kind": "pretrain"}))
    assert main(["validate-config", str(good)]) == 0


def test_train_with_an_invalid_config_exits_2_before_any_work(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_quick_aha_mini_recipe_runs_end_to_end(tmp_path):
    run_dir = tmp_path / "aha"
    run_quick("aha-mini", run_dir, timeout=600)
    events = read_events(run_dir)
    assert events[-1]["type"] == "status" and events[-1]["phase"] == "done"
    grpo = [e for e in events if e["type"] == "metric" and e.get("phase") == "grpo"]
    assert [e["step"] for e in grpo] == [1, 2]
    for name in ("reward", "accuracy", "completions/mean_length", "frac_reward_zero_std", "entropy", "time/generate", "lr"):
        assert name in grpo[0]["values"]
    assert all(describe(name) is not None for e in grpo for name in e["values"]), "every metric is documented"
    evals = [e for e in events if e["type"] == "eval" and e["metric"] == "pass@1"]
    assert [e["step"] for e in evals] == [0, 2]
    traces = [e for e in events if e["type"] == "trace" and e.get("source") == "train"]
    assert len(traces) == 2 * 4  # one whole group (G = 4) per step
    assert (run_dir / "checkpoints" / "step-2" / "model.safetensors").exists()
    assert json.loads((run_dir / "config.json").read_text())["name"] == "aha-mini"


def test_score_and_evaluate_are_handed_to_the_evaluation_package(capsys):
    for command, flag in (("score", "--predictions"), ("evaluate", "--checkpoint")):
        try:
            main([command, "--help"])
        except SystemExit as exc:  # argparse of the delegated command prints its help and exits 0
            assert exc.code == 0
        assert flag in capsys.readouterr().out


def test_recipe_list_shows_every_recipe_on_one_line_with_what_it_needs(capsys):
    assert main(["recipe", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    # the recipes, then the chains of them (r1-mini and long2short first, then the findings' own)
    from r1model.train.findings import CHAINS

    assert names[:8] == ["aha-mini", "r1-zero", "cold-start-sft", "rejection-sampling", "distill", "evaluate", "r1-mini",
                         "long2short"]
    assert names[8:] == list(CHAINS)[2:]
    needs = {line.split()[0]: line for line in lines}
    assert "--model" in needs["evaluate"] and "--dataset" in needs["distill"]


def test_recipe_run_without_a_required_checkpoint_exits_2_naming_the_field(capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["recipe", "run", "rejection-sampling", "--quick", "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "model.source" in err and "--model PATH" in err
    assert not run_dir.exists()  # nothing started


def test_recipe_show_applies_model_dataset_and_set_options(capsys, tmp_path):
    assert main(["recipe", "show", "r1-zero", "--model", str(tmp_path), "--dataset", "problems.jsonl",
                 "--set", "grpo.beta=0", "--set", "evaluation.benchmarks=[\"heldout\", \"gsm8k\"]"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["model"]["source"] == str(tmp_path) and config["base"]["steps"] == 0
    assert config["datasets"][0]["path"] == "problems.jsonl" and config["grpo"]["beta"] == 0
    assert config["evaluation"]["benchmarks"] == ["heldout", "gsm8k"]
    assert main(["recipe", "show", "r1-zero", "--set", "grpo.beta"]) == 2
    assert "KEY.PATH=VALUE" in capsys.readouterr().err
