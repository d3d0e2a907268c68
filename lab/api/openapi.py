"""The OpenAPI 3.1 document of API v1, written by hand next to the views it describes."""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from lab.api.base import api_view


def _op(summary: str, *, params: list | None = None, body: dict | None = None, ok: int = 200, tag: str = "") -> dict:
    op: dict = {"summary": summary, "tags": [tag] if tag else [], "responses": {str(ok): {"description": "OK"}}}
    op["responses"].update({"400": {"description": "Invalid request (errors by field)"}, "401": {"description": "No or bad token"}, "404": {"description": "Not found, or another team's"}})
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, kind: str = "string", description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": description}


def _p(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


TEAM = _q("team", description="team slug; default: your first team")
TRACE_FILTERS = [
    _q("step_min", "integer"), _q("step_max", "integer"), _q("status", description="correct | wrong | unparseable | skipped"),
    _q("reward_min", "number"), _q("reward_max", "number"), _q("tokens_min", "integer"), _q("tokens_max", "integer"),
    _q("reflection", description="yes | no"), _q("truncated", description="yes | no"), _q("language_mix_min", "number"),
    _q("source", description="train | eval"), _q("q", description="full-text search in prompt and completion"),
    _q("group_id"), _q("prompt_id"), _q("reviewed", description="yes | no (by you)"), _q("page", "integer"),
]

PATHS = {
    "/api/v1/auth/token": {"post": _op("Exchange username and password for a bearer token", body={"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}, ok=201, tag="auth")},
    "/api/v1/teams": {"get": _op("Your teams and your role in each", tag="teams")},
    "/api/v1/datasets": {
        "get": _op("List a team's datasets (all versions)", params=[TEAM], tag="datasets"),
        "post": _op(
            "Create a dataset from a built-in generator (JSON) or an uploaded file (multipart: name, file)",
            body={"type": "object", "required": ["name", "task"], "properties": {"team": {"type": "string"}, "name": {"type": "string"}, "task": {"type": "string"}, "n": {"type": "integer"}, "seed": {"type": "integer"}, "split": {"type": "string", "enum": ["train", "test"]}, "params": {"type": "object"}}},
            ok=201, tag="datasets",
        ),
    },
    "/api/v1/datasets/{dataset_id}": {"get": _op("One dataset with its validation report", params=[_p("dataset_id")], tag="datasets")},
    "/api/v1/runs": {
        "get": _op("List a team's runs", params=[TEAM, _q("project"), _q("user"), _q("status", description="a status, or 'active'"), _q("q"), _q("offset", "integer")], tag="runs"),
        "post": _op(
            "Create a run (validated RunConfig), queued and dispatched. Files are named by reference: model.source "
            "a preset or run:ID@STEP, datasets[].path dataset:ID. A repeated Idempotency-Key returns the run it made (200, "
            "Idempotent-Replayed: true) instead of a second one",
            params=[{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 100},
                     "description": "a client token: the same key again makes no second run"}],
            body={"type": "object", "required": ["name"], "properties": {"team": {"type": "string"}, "name": {"type": "string"}, "config": {"type": "object", "description": "RunConfig (see r1model.train.config); inputs as references"}, "queue": {"type": "string", "enum": ["cpu", "gpu"]}, "gpus": {"type": "integer", "minimum": 0, "description": "GPUs the run needs on one worker (> 0: gpu queue; > 1: one process per GPU, distributed.backend deepspeed); it stays queued, with a message, until a worker has that many free"}, "recipe": {"type": "string"}, "quick": {"type": "boolean"}, "project": {"type": "string"}, "parent": {"type": "integer"}, "parent_step": {"type": "integer"}}},
            ok=201, tag="runs",
        ),
    },
    "/api/v1/runs/{run_id}": {"get": _op("One run with its config", params=[_p("run_id")], tag="runs")},
    "/api/v1/runs/{run_id}/cancel": {"post": _op("Cancel: queued → cancelled; running → cancelling", params=[_p("run_id")], tag="runs")},
    "/api/v1/runs/{run_id}/resume": {"post": _op("Resume a failed or cancelled run from its last checkpoint", params=[_p("run_id")], tag="runs")},
    "/api/v1/runs/{run_id}/metrics": {"get": _op("The run's metric names", params=[_p("run_id")], tag="metrics")},
    "/api/v1/runs/{run_id}/metrics/series": {"get": _op("Series downsampled to ≤ 2,000 points (each bucket's minimum and maximum), with raw and drawn counts and the bucket width in steps", params=[_p("run_id"), _q("names", description="comma-separated"), _q("after_step", "integer"), _q("max_points", "integer"), _q("eval", description="1: include benchmark series")], tag="metrics")},
    "/api/v1/runs/{run_id}/traces": {"get": _op("Sampled traces, filtered, 50 a page (newest step first)", params=[_p("run_id"), *TRACE_FILTERS], tag="traces")},
    "/api/v1/traces/{trace_id}": {"get": _op("One trace in full (prompt, completion, think, answer, rewards)", params=[_p("trace_id")], tag="traces")},
    "/api/v1/traces/{trace_id}/annotations": {
        "get": _op("Annotations of a trace", params=[_p("trace_id")], tag="annotations"),
        "post": _op("Rate a trace (one annotation per reviewer; posting again replaces it)", params=[_p("trace_id")], body={"type": "object", "required": ["rating"], "properties": {"rating": {"type": "string", "enum": ["good", "bad", "flag"]}, "labels": {"type": "array", "items": {"type": "string"}}, "comment": {"type": "string"}}}, ok=201, tag="annotations"),
    },
    "/api/v1/runs/{run_id}/annotations": {"get": _op("All annotations of a run", params=[_p("run_id")], tag="annotations")},
    "/api/v1/runs/{run_id}/benchmarks": {"get": _op("Benchmark table of one run: checkpoint × benchmark", params=[_p("run_id")], tag="benchmarks")},
    "/api/v1/benchmarks": {"get": _op("Benchmark table of a team: run × checkpoint × benchmark", params=[TEAM], tag="benchmarks")},
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "R1 Lab API", "version": getattr(settings, "VERSION", "0.1.0"), "description": "Teams, datasets, runs, metrics, traces, annotations and benchmarks. Authenticate with POST /api/v1/auth/token, then send Authorization: Bearer <token>. Objects of other teams answer 404."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": PATHS,
    }


@api_view(public=True)
def openapi_document(request):
    return JsonResponse(document())
