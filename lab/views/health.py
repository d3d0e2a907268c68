"""GET /healthz: is the database answering, is the broker answering, how many workers are alive."""
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


def _check_db() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # any driver error means "down"
        return f"error: {type(exc).__name__}: {exc}".strip()[:300]


def _check_broker() -> str:
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}".strip()[:300]


def _alive_workers() -> int:
    from lab.models import Worker

    try:
        return Worker.alive().count()
    except Exception:
        return 0


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    db = _check_db()
    broker = _check_broker()
    body = {
        "db": db,
        "broker": broker,
        "workers": _alive_workers() if db == "ok" else 0,
        "version": settings.VERSION,
    }
    return JsonResponse(body, status=200 if db == "ok" and broker == "ok" else 503)
