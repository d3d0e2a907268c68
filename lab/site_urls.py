"""The lab's pages and its REST API (included by lab/urls.py)."""
from django.urls import path

from lab.api import openapi
from lab.api import views as api
from lab.views import auth, chains, dashboard, datasets, models, pages, runs, team, traces
from lab.views import think_budget

pages_urls = [
    path("", runs.overview, name="overview"),
    path("team/switch", team.switch_team, name="switch_team"),
    path("team/members", team.members, name="members"),
    path("runs/", runs.runs_list, name="runs"),
    path("runs/new/", runs.run_new, name="run_new"),
    path("runs/demo", runs.demo_run, name="demo_run"),
    path("runs/compare/", dashboard.compare, name="compare"),
    path("runs/<int:run_id>/", dashboard.run_detail, name="run"),
    path("runs/<int:run_id>/chain/", chains.chain_detail, name="chain"),
    path("chains/new/", chains.chain_new, name="chain_new"),
    path("findings/", chains.findings_page, name="findings"),
    path("runs/<int:run_id>/think-budget/", think_budget.think_budget_new, name="think_budget_new"),
    path("runs/<int:run_id>/status", dashboard.run_status_fragment, name="run_status"),
    path("runs/<int:run_id>/metrics.json", dashboard.run_metrics, name="run_metrics"),
    path("runs/<int:run_id>/cancel", runs.run_cancel_view, name="run_cancel"),
    path("runs/<int:run_id>/resume", runs.run_resume_view, name="run_resume"),
    path("runs/<int:run_id>/traces/", traces.trace_list, name="traces"),
    # ids from imported runs may hold any character ("gsm8k/train/0", "..", "?"): they go in the query
    path("runs/<int:run_id>/group/", traces.trace_group_view, name="trace_group"),
    path("runs/<int:run_id>/groups/<str:group_id>/", traces.trace_group_view, name="trace_group_legacy"),  # older links
    path("runs/<int:run_id>/prompt/", traces.prompt_view, name="prompt_history"),
    path("runs/<int:run_id>/review/", traces.review_next, name="review_next"),
    path("runs/<int:run_id>/annotations.csv", traces.annotations_export, name="annotations_csv"),
    path("runs/<int:run_id>/benchmarks/", pages.run_benchmarks, name="run_benchmarks"),
    path("traces/<int:trace_id>/", traces.trace_detail, name="trace"),
    path("traces/<int:trace_id>/annotate", traces.trace_annotate, name="trace_annotate"),
    path("datasets/", datasets.dataset_list, name="datasets"),
    path("datasets/new/", datasets.dataset_new, name="dataset_new"),
    path("datasets/save", datasets.dataset_save, name="dataset_save"),
    path("datasets/<int:dataset_id>/", datasets.dataset_detail, name="dataset"),
    path("models/", models.model_list, name="models"),
    path("models/register", models.model_register, name="model_register"),
    path("review/", pages.review_home, name="review"),
    path("benchmarks/", pages.benchmarks, name="benchmarks"),
    path("workers/", pages.workers, name="workers"),
    # The rate-limited login; lab/urls.py should route accounts/login/ here (it matches first today).
    path("accounts/login/", auth.login_view, name="login_limited"),
]

api_urls = [
    path("api/v1/openapi.json", openapi.openapi_document, name="api_openapi"),
    path("api/v1/auth/token", api.auth_token, name="api_token"),
    path("api/v1/teams", api.teams, name="api_teams"),
    path("api/v1/datasets", api.datasets, name="api_datasets"),
    path("api/v1/datasets/<int:dataset_id>", api.dataset_detail, name="api_dataset"),
    path("api/v1/runs", api.runs, name="api_runs"),
    path("api/v1/runs/<int:run_id>", api.run_detail, name="api_run"),
    path("api/v1/runs/<int:run_id>/cancel", api.run_cancel_api, name="api_run_cancel"),
    path("api/v1/runs/<int:run_id>/resume", api.run_resume_api, name="api_run_resume"),
    path("api/v1/runs/<int:run_id>/metrics", api.run_metric_names, name="api_metric_names"),
    path("api/v1/runs/<int:run_id>/metrics/series", api.run_metric_series, name="api_metric_series"),
    path("api/v1/runs/<int:run_id>/traces", api.run_traces, name="api_traces"),
    path("api/v1/runs/<int:run_id>/annotations", api.run_annotations, name="api_run_annotations"),
    path("api/v1/runs/<int:run_id>/benchmarks", api.run_benchmarks, name="api_run_benchmarks"),
    path("api/v1/traces/<int:trace_id>", api.trace_detail, name="api_trace"),
    path("api/v1/traces/<int:trace_id>/annotations", api.trace_annotations, name="api_trace_annotations"),
    path("api/v1/benchmarks", api.benchmarks, name="api_benchmarks"),
]

urlpatterns = pages_urls + api_urls
