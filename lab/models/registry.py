"""Registered models: a team's named base models — a Hugging Face hub id, or a folder under one of the
model roots an admin configured (LAB_MODEL_ROOTS). A run names one as model.source "model:ID"."""
from django.conf import settings
from django.db import models


class RegisteredModel(models.Model):
    class Kind(models.TextChoices):
        HUB = "hub", "Hugging Face hub id"
        FOLDER = "folder", "Folder under a model root"

    team = models.ForeignKey("lab.Team", on_delete=models.CASCADE, related_name="registered_models")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    hub_id = models.CharField(max_length=200, blank=True)  # "org/name" (kind hub)
    revision = models.CharField(max_length=100, blank=True)  # branch, tag or commit; empty = the default branch
    root = models.CharField(max_length=64, blank=True)  # a name of LAB_MODEL_ROOTS (kind folder)
    folder = models.CharField(max_length=500, blank=True)  # relative to that root (kind folder)
    info = models.JSONField(default=dict, blank=True)  # lab.services.model_info.read_model_info; {} = not read yet
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="registered_model_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def reference(self) -> str:
        return f"model:{self.id}"

    @property
    def hub_source(self) -> str:
        """'org/name[@revision]': what the trainer downloads (kind hub)."""
        return f"{self.hub_id}@{self.revision}" if self.revision else self.hub_id

    @property
    def location(self) -> str:
        """What the page shows: the hub id, or root:folder (the root's name, never its server path)."""
        return self.hub_source if self.kind == self.Kind.HUB else f"{self.root}:{self.folder}"
