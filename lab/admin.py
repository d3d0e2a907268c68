"""Django admin for staff: teams and members first, everything else to inspect."""
from django.contrib import admin

from lab.models import (
    Annotation, ApiToken, CheckpointRecord, Dataset, EvalResult, Membership, Project, Run, Team, Worker,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "created_at"]
    list_filter = ["team"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "team", "source", "row_count", "created_at"]
    list_filter = ["team", "source"]
    search_fields = ["name"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "status", "queue", "step", "total_steps", "worker", "created_at"]
    list_filter = ["status", "queue", "team"]
    search_fields = ["name"]
    raw_id_fields = ["parent", "worker"]


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "heartbeat_at", "current_run"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["trace", "user", "rating", "updated_at"]
    raw_id_fields = ["trace"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_used_at"]
    readonly_fields = ["key_hash"]


admin.site.register(CheckpointRecord)
admin.site.register(EvalResult)
