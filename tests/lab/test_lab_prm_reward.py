"""The lab and the prm reward: its checkpoint path is never a lab input; the run-health page flags a reward
that rises while accuracy does not (a hacked learned reward, DeepSeek-R1 §4.2)."""
import pytest
from django.core.exceptions import ValidationError

from lab.models import Metric, Run
from lab.selectors.health import run_health
from lab.selectors.metrics import metric_names
from lab.services.ingest import store_summaries
from lab.services.references import check_inputs
from r1model.train.config import validate_run_config


def _series(run, name, values, start_seq=0):
    rows = [(start_seq + i, i, name, v) for i, v in enumerate(values)]
    Metric.objects.bulk_create([Metric(run=run, seq=seq, step=step, name=n, value=v) for seq, step, n, v in rows])
    store_summaries(run.id, [(run.id, *row) for row in rows])


def test_a_prm_checkpoint_path_is_a_field_error_in_the_lab(lab):
    config = validate_run_config({"rewards": [{"name": "prm", "weight": 1.0, "model": "/srv/other-team/prm"},
                                              {"name": "accuracy", "weight": 0.0}]}).model_dump(mode="json")
    with pytest.raises(ValidationError) as caught:
        check_inputs(lab.team.id, config)
    assert set(caught.value.message_dict) == {"rewards.0.model"}
    rule_based = validate_run_config({}).model_dump(mode="json")
    assert check_inputs(lab.team.id, rule_based)["rewards"] == rule_based["rewards"]


def test_health_flags_reward_up_while_accuracy_is_flat(lab):
    run = Run.objects.create(team=lab.team, name="prm-hacked")
    _series(run, "reward", [0.3] * 20 + [0.8] * 20)
    _series(run, "accuracy", [0.25] * 20 + [0.22] * 20, start_seq=100)
    warnings = {w.key: w for w in run_health(run.id, metric_names(run.id))}
    assert set(warnings) == {"reward_without_accuracy"}
    assert "0.3 → 0.8" in warnings["reward_without_accuracy"].explanation


def test_health_is_quiet_when_accuracy_rises_with_the_reward_or_format_explains_it(lab):
    learning = Run.objects.create(team=lab.team, name="learning")
    _series(learning, "reward", [0.3] * 20 + [0.8] * 20)
    _series(learning, "accuracy", [0.2] * 20 + [0.6] * 20, start_seq=100)
    assert run_health(learning.id, metric_names(learning.id)) == []
    tags = Run.objects.create(team=lab.team, name="tags")
    _series(tags, "reward", [0.1] * 20 + [0.6] * 20)
    _series(tags, "accuracy", [0.2] * 40, start_seq=100)
    _series(tags, "format_rate", [0.1] * 20 + [0.95] * 20, start_seq=200)
    assert [w.key for w in run_health(tags.id, metric_names(tags.id))] == ["reward_hacking"]
