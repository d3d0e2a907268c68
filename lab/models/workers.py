"""Worker nodes as they announce themselves: capabilities, queues, heartbeat and current run."""
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Worker(models.Model):
    name = models.CharField(max_length=200, unique=True)  # celery hostname, e.g. cpu@host
    queues = models.JSONField(default=list)
    capabilities = models.JSONField(default=dict)  # {"cores": 16, "gpus": 8, "memory_gb": 256, ...}
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    current_run = models.ForeignKey("lab.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    idle_since = models.DateTimeField(null=True, blank=True)  # free slot since; a long-idle worker resends lost runs

    def __str__(self) -> str:
        return self.name

    @classmethod
    def alive(cls):
        cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_S)
        return cls.objects.filter(heartbeat_at__gte=cutoff)
