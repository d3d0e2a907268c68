"""The lab's test world: a team with an owner (admin) and a teammate (reviewer), another team with
an outsider, and one run of the first team with every kind of event row."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("DEBUG", "true")


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def make_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, password=f"{username}-password-1")


@pytest.fixture
def lab(db):
    from lab.models import (
        Annotation, CheckpointRecord, Dataset, EvalResult, Membership, Metric, Project, Role, Run, RunLog, Team, Trace,
    )

    owner, teammate, outsider = make_user("owner"), make_user("teammate"), make_user("outsider")
    team = Team.objects.create(slug="alpha", name="Alpha")
    other = Team.objects.create(slug="beta", name="Beta")
    Membership.objects.create(team=team, user=owner, role=Role.ADMIN)
    Membership.objects.create(team=team, user=teammate, role=Role.REVIEWER)
    Membership.objects.create(team=other, user=outsider, role=Role.ADMIN)
    project = Project.objects.create(team=team, name="zero")
    dataset = Dataset.objects.create(team=team, name="adds", source="generator", path="/nonexistent.jsonl", content_hash="ab" * 32, row_count=3)
    run = Run.objects.create(team=team, project=project, name="alpha-run", config={"kind": "grpo"}, status="failed", created_by=owner, step=30, total_steps=100)
    Metric.objects.bulk_create(
        [Metric(run=run, seq=i, step=i, name="completions/mean_length", value=10.0 + i) for i in range(30)]
        + [Metric(run=run, seq=i, step=i, name="reward", value=i / 30) for i in range(30)]
    )
    traces = [
        Trace(run=run, seq=100 + i, step=5, group_id="g-5-0", prompt_id="p-0", prompt="What is 2+3?", completion=f"<think>wait, {i}</think><answer>{i}</answer>",
              think=f"wait, let me check {i}", answer=str(i), reward=float(i == 5), advantage=0.5 if i == 5 else -0.1,
              status="correct" if i == 5 else "wrong", tokens=20 + i, has_reflection=True)
        for i in range(4, 8)
    ]
    Trace.objects.bulk_create(traces)
    trace = Trace.objects.get(run=run, seq=104)
    checkpoint = CheckpointRecord.objects.create(run=run, seq=200, step=20, path="/runs/x/checkpoints/step-20")
    EvalResult.objects.create(run=run, seq=201, step=20, benchmark="addition-test", metric="pass@1", value=0.5, n=8)
    RunLog.objects.create(run=run, seq=202, kind="log", message="hello")
    annotation = Annotation.objects.create(trace=trace, user=teammate, rating="good", labels=["clean"], comment="fine")
    return SimpleNamespace(
        owner=owner, teammate=teammate, outsider=outsider, team=team, other=other, project=project, dataset=dataset,
        run=run, trace=trace, checkpoint=checkpoint, annotation=annotation,
    )


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(lab):
    return _client_for(lab.owner)


@pytest.fixture
def teammate_client(lab):
    return _client_for(lab.teammate)


@pytest.fixture
def outsider_client(lab):
    return _client_for(lab.outsider)
