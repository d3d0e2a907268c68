"""The Celery app. Messages carry run ids only; the database holds each run's state (STYLE.md, Celery)."""
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
