"""Django admin for staff: teams and members first, everything else to inspect."""
from django import forms
from django.contrib import admin

from lab.models import (
    Annotation, ApiToken, CheckpointRecord, Dataset, EvalResult, Membership, Project, RegisteredModel, Run, Team, Worker,
)
from lab.services.model_info import read_model_info
from lab.services.model_registry import ModelFolderError, model_folder_path, parse_hub_reference


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


class RegisteredModelForm(forms.ModelForm):
    """Staff register a folder by a model root's name and a relative folder (confined to the root) or a hub id."""

    class Meta:
        model = RegisteredModel
        fields = ["team", "name", "kind", "hub_id", "revision", "root", "folder"]

    def clean(self):
        data = super().clean()
        if data.get("kind") == RegisteredModel.Kind.FOLDER:
            try:
                path = model_folder_path(data.get("root") or "", (data.get("folder") or "").strip().strip("/"))
            except ModelFolderError as exc:
                raise forms.ValidationError({"folder": str(exc)}) from None
            if not (path / "config.json").is_file():
                raise forms.ValidationError({"folder": "no config.json in this folder (not a model folder)"})
            self.instance.info = read_model_info(path)
            data["hub_id"], data["revision"] = "", ""
        elif data.get("kind") == RegisteredModel.Kind.HUB:
            text = (data.get("hub_id") or "") + (f"@{data['revision']}" if data.get("revision") else "")
            if parse_hub_reference(text) is None:
                raise forms.ValidationError({"hub_id": "not a hub id org/name (revision in its own field)"})
            data["root"], data["folder"] = "", ""
            self.instance.info = {}
        return data


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    form = RegisteredModelForm
    list_display = ["name", "team", "kind", "hub_id", "root", "folder", "created_at"]
    list_filter = ["team", "kind"]
    search_fields = ["name", "hub_id", "folder"]
    readonly_fields = ["info", "created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
