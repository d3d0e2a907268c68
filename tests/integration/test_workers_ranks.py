"""A run of 2 ranks (gpus: 2 on a worker that declares 2 GPUs; CPU ranks over gloo): the supervisor starts
one process per GPU in one process group; SIGKILL of one rank takes the whole attempt down (no survivor
left hanging in a collective) and the run resumes from its last checkpoint with every step's metrics once."""
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import group_alive

try:
    import deepspeed  # noqa: F401
except Exception:  # noqa: BLE001
    pytest.skip("deepspeed is not installed", allow_module_level=True)

TWO_RANK_GRPO = {
    "kind": "grpo", "name": "two-ranks",
    "model": {"source": "tiny", "overrides": {
        "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 1}},
    "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
    "template": "mini", "seed": 3, "threads": 1, "total_steps": 12, "checkpoint_interval": 2, "keep_checkpoints": 3,
    "traces_per_step": 2,
    "grpo": {"group_size": 2, "prompts_per_step": 2, "learning_rate": 1e-3, "beta": 0.0}, "sampling": {"max_new_tokens": 8},
    "evaluation": {"interval": 0, "at_start": False, "benchmarks": []},
    "distributed": {"backend": "deepspeed", "zero_stage": 0, "nproc_per_node": 2},
}


def environ(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_sigkill_of_one_rank_takes_the_run_down_and_it_resumes_once(fs_lab):
    lab = fs_lab
    lab.start_worker("gpu1", queues="gpu", WORKER_GPUS="2")
    [run_id] = lab.django(f"""
        from django.db import transaction
        from lab.models import Run, Team
        from lab.services.dispatch import dispatch_run
        team, _ = Team.objects.get_or_create(slug="t", defaults={{"name": "T"}})
        with transaction.atomic():
            run = Run.objects.create(team=team, name="ranks", queue="gpu", gpu_count=2, config={TWO_RANK_GRPO!r})
            transaction.on_commit(lambda: dispatch_run(run.id))
        result = [run.id]
    """)
    state = lab.wait_for(run_id, lambda s: s["run_dir"] and (Path(s["run_dir"]) / "supervisor.json").exists(),
                         timeout=60, what="a started trainer")
    info = json.loads((Path(state["run_dir"]) / "supervisor.json").read_text())
    ranks, pgid = info["ranks"], info["pgid"]
    assert len(ranks) == 2 and info["cuda_visible_devices"] == "0,1"
    # one process per GPU, both in the supervisor's process group, each told its rank
    assert sorted(group_alive(pgid)) == sorted(ranks)
    envs = [environ(pid) for pid in ranks]
    assert [(e["RANK"], e["LOCAL_RANK"], e["WORLD_SIZE"], e["CUDA_VISIBLE_DEVICES"]) for e in envs] == [
        ("0", "0", "2", "0,1"), ("1", "1", "2", "0,1")]
    lab.wait_for(run_id, lambda s: s["step"] >= 3, timeout=240, what="step 3 (after the checkpoint of step 2)")
    os.kill(ranks[1], signal.SIGKILL)
    # the survivor does not hang in its collective: the whole group is gone within seconds
    deadline = time.monotonic() + 20
    while any(pid in group_alive(pgid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(pgid), "a rank survived its peer's death"
    final = lab.wait_finished(run_id, timeout=420)
    assert final["status"] == "completed", final
    assert final["attempt"] == 2
    row = lab.query("SELECT retry_reason, resumed_from_step FROM lab_run WHERE id = %s", (run_id,))[0]
    assert row[0] == "rank 1 of 2 killed by SIGKILL", row
    assert row[1] and row[1] >= 2, row
    lab.assert_events_exactly_once(run_id)
    assert max(e["step"] for e in lab.events(run_id) if e["type"] == "metric") == 12  # every step, each once
