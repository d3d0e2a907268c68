"""The Celery app. Messages carry run ids only; the database holds each run's state."""
import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lab.settings")

app = Celery("r1lab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # explicit exchanges: a bare Queue("gpu") would inherit the default (cpu) exchange and routing key
    task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("cpu", "gpu")],
    task_default_queue="cpu",
    worker_prefetch_multiplier=1,  # a worker holds at most one run it has not started
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["workers"])

# Broker tuning. The embedded filesystem broker polls its folder (seconds). Redis redelivers an
# unacknowledged message after the visibility timeout (BROKER_VISIBILITY_TIMEOUT_S, default one hour):
# harmless for a run, whose claim ignores it, so a short one only costs a no-op task.
_transport = dict(app.conf.broker_transport_options or {})
if str(app.conf.broker_url or "").startswith("filesystem://"):
    _transport.setdefault("polling_interval", 0.1)
if str(app.conf.broker_url or "").startswith("sqla+"):
    from kombu.transport import sqlalchemy as _sqla  # its transport options go to create_engine()

    _sqla.Transport.polling_interval = 0.1
if str(app.conf.broker_url or "").startswith(("redis://", "rediss://")):
    _transport.setdefault("socket_connect_timeout", 5)  # a web request never waits long on a dead broker
    if os.environ.get("BROKER_VISIBILITY_TIMEOUT_S"):
        from lab.env import env_int

        _visibility = env_int("BROKER_VISIBILITY_TIMEOUT_S", 3600)
        _transport["visibility_timeout"] = _visibility
        _transport["unacked_restore_interval"] = max(1, min(10, _visibility // 2))
        _transport["unacked_restore_throttle"] = 1
app.conf.broker_transport_options = _transport
