"""GET /healthz names the part that fails."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from lab.models import Worker


@pytest.mark.django_db
def test_healthz_reports_db_broker_and_live_workers(client):
    Worker.objects.create(name="cpu@a", heartbeat_at=timezone.now())
    Worker.objects.create(name="cpu@stale", heartbeat_at=timezone.now() - timedelta(hours=1))
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 200, body
    assert body["db"] == "ok" and body["broker"] == "ok"
    assert body["workers"] == 1
    assert body["version"]


@pytest.mark.django_db
def test_healthz_is_503_and_names_the_broker_when_it_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["db"] == "ok"
    assert body["broker"].startswith("error")


@pytest.mark.django_db
def test_healthz_with_redis_broker_is_ok(client, settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert client.get("/healthz").status_code == 200
