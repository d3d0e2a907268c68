"""CSRF on state changes, the login rate limit, CSP on pages, check --deploy."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import resolve

from lab import site_urls
from lab.models import Annotation, Run

ROOT = Path(__file__).resolve().parents[2]


def test_page_posts_without_a_csrf_token_are_refused(lab):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lab.owner)
    assert browser.post(f"/traces/{lab.trace.id}/annotate", {"rating": "bad"}).status_code == 403
    assert browser.post(f"/runs/{lab.run.id}/resume").status_code == 403
    assert browser.post("/runs/demo").status_code == 403
    assert not Annotation.objects.filter(user=lab.owner).exists()
    assert Run.objects.get(id=lab.run.id).status == "failed"


def test_state_changing_views_refuse_get(lab, owner_client):
    for name in ("run_cancel", "run_resume", "trace_annotate", "demo_run", "dataset_save", "switch_team", "model_register"):
        pattern = next(p for p in site_urls.pages_urls if p.name == name)
        kwargs = {k: {"run_id": lab.run.id, "trace_id": lab.trace.id}[k] for k in pattern.pattern.converters}
        from django.urls import reverse

        assert owner_client.get(reverse(name, kwargs=kwargs)).status_code == 405, name


@pytest.mark.urls("tests.lab.login_first_urls")
def test_login_is_rate_limited_per_username_and_ip(lab, client):
    for _ in range(5):
        assert client.post("/accounts/login/", {"username": "owner", "password": "wrong"}).status_code == 200
    blocked = client.post("/accounts/login/", {"username": "owner", "password": "owner-password-1"})
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.content.decode()
    other_user = client.post("/accounts/login/", {"username": "teammate", "password": "teammate-password-1"})
    assert other_user.status_code == 302


def test_lab_login_route_is_the_rate_limited_view():
    from lab.views.auth import RateLimitedLoginView

    match = resolve("/accounts/login/")
    assert getattr(match.func, "view_class", None) is RateLimitedLoginView


def test_pages_carry_a_script_locking_csp(owner_client, lab):
    response = owner_client.get(f"/runs/{lab.run.id}/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert "<script>" not in body  # data travels in json_script blocks (type="application/json") only


@pytest.mark.slow
def test_check_deploy_is_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env = {**env, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(60), "ALLOWED_HOSTS": "lab.example", "LAB_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
