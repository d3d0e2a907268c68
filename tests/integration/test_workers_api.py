"""The whole path a researcher takes: the REST API of a real web server → lab.services.runs.run_create →
dispatch on commit → a real worker → the real trainer → events in the database; and the web server
restarting in the middle of it, which must not touch the run."""
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import FINISHED, PYTHON, REPO, TINY_GRPO, group_alive
from tests.services import free_port, wait_for_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
]


class Web:
    """`manage.py runserver` of the lab deployment, restartable."""

    def __init__(self, lab):
        self.lab, self.port, self.proc = lab, free_port(), None

    def start(self) -> "Web":
        log = open(self.lab.root / "web.log", "ab")
        self.proc = subprocess.Popen([PYTHON, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                                     cwd=REPO, env=self.lab.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=60)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def call(self, method: str, path: str, token: str, data: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture
def web(redis_lab):
    web = Web(redis_lab).start()
    yield web
    web.stop()


def researcher_token(lab) -> str:
    return lab.django("""
        from django.contrib.auth import get_user_model
        from lab.models import Membership, Team
        from lab.services.tokens import token_create
        user = get_user_model().objects.create_user("ada", password="a-long-password-1")
        team = Team.objects.create(slug="lab", name="Lab")
        Membership.objects.create(team=team, user=user, role="researcher")
        result = token_create(user=user)
    """)


def test_run_launched_through_the_api_completes_across_a_web_restart(redis_lab, web):
    lab = redis_lab
    token = researcher_token(lab)
    lab.start_worker()
    run_id = web.call("POST", "/api/v1/runs", token, {"team": "lab", "name": "api run", "config": TINY_GRPO})["id"]
    step = lab.wait_for(run_id, lambda s: s["step"] >= 2, what="step 2")["step"]
    web.stop()  # the web server dies mid-run: the run's state lives in the database and the worker
    lab.wait_for(run_id, lambda s: s["step"] > step or s["status"] in FINISHED, what="progress without the web")
    web.start()
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1, state["message"]
    detail = web.call("GET", f"/api/v1/runs/{run_id}", token)
    assert detail["status"] == "completed"
    lab.assert_events_exactly_once(run_id)


def test_cancel_through_the_api_stops_the_whole_trainer_group(redis_lab, web):
    lab = redis_lab
    token = researcher_token(lab)
    lab.start_worker()
    run_id = web.call("POST", "/api/v1/runs", token, {"team": "lab", "name": "to cancel", "config": TINY_GRPO})["id"]
    state = lab.wait_for(run_id, lambda s: s["step"] >= 2, what="step 2")
    pgid = json.loads((Path(state["run_dir"]) / "supervisor.json").read_text())["pgid"]
    web.call("POST", f"/api/v1/runs/{run_id}/cancel", token, {})
    state = lab.wait_finished(run_id, timeout=60)
    assert state["status"] == "cancelled"
    assert group_alive(pgid) == []
    assert web.call("GET", f"/api/v1/runs/{run_id}", token)["status"] == "cancelled"
