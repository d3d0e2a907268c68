"""Reviewer annotations on traces, and API tokens."""
from django.conf import settings
from django.db import models


class Annotation(models.Model):
    class Rating(models.TextChoices):
        GOOD = "good", "Good"
        BAD = "bad", "Bad"
        FLAG = "flag", "Flag"

    trace = models.ForeignKey("lab.Trace", on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    rating = models.CharField(max_length=8, choices=Rating.choices)
    labels = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace", "user"], name="one_annotation_per_reviewer")]


class ApiToken(models.Model):
    """A bearer token; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
