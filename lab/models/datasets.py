"""Datasets: an uploaded file or a built-in generator's output, validated, hashed and versioned."""
from django.conf import settings
from django.db import models


class Dataset(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded file"
        GENERATOR = "generator", "Built-in generator"
        ROLLOUT = "rollout", "Rollouts of a run (rejection sampling)"

    team = models.ForeignKey("lab.Team", on_delete=models.CASCADE, related_name="datasets")
    project = models.ForeignKey("lab.Project", on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=16, choices=Source.choices)
    generator = models.JSONField(default=dict, blank=True)  # {"task": ..., "n": ..., "seed": ..., **difficulty}
    path = models.CharField(max_length=500)  # normalised JSONL under LAB_DATA_DIR/datasets
    content_hash = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)  # r1model.tasks.dataset_io ValidationReport
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "name", "version"], name="dataset_version_unique")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
