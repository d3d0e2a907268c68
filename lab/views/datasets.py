"""Dataset pages: list, new (upload or generator) → validation report → save, detail with preview."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from lab.access import get_for_user
from lab.forms import GeneratorDatasetForm, UploadDatasetForm
from lab.models import Dataset
from lab.services.datasets import (
    StagedDataset,
    dataset_create,
    dataset_integrity,
    file_preview,
    stage_generated,
    stage_upload,
    staged_preview,
    task_knobs,
    task_names,
)
from lab.views.common import page, team_page

SESSION_STAGED = "lab_staged_datasets"
MAX_STAGED = 5


@team_page
def dataset_list(request, team, access):
    datasets = Dataset.objects.filter(team=team).select_related("created_by").order_by("name", "-version")
    return page(request, "lab/datasets.html", {"datasets": datasets, "can_write": access.can_write}, nav="datasets")


def _remember(request, staged: StagedDataset) -> None:
    table = request.session.get(SESSION_STAGED, {})
    table[staged.token] = staged.to_session()
    if len(table) > MAX_STAGED:
        for token in list(table)[:-MAX_STAGED]:
            table.pop(token)
    request.session[SESSION_STAGED] = table


@team_page
def dataset_new(request, team, access):
    access.require("write")
    tasks = task_names()
    generator_form = GeneratorDatasetForm(tasks=tasks, prefix="gen")
    upload_form = UploadDatasetForm(prefix="up")
    if request.method == "POST":
        staged = None
        try:
            if request.POST.get("kind") == "upload":
                upload_form = UploadDatasetForm(request.POST, request.FILES, prefix="up")
                if upload_form.is_valid():
                    staged = stage_upload(name=upload_form.cleaned_data["name"], upload=upload_form.cleaned_data["file"])
            else:
                generator_form = GeneratorDatasetForm(request.POST, tasks=tasks, prefix="gen")
                if generator_form.is_valid():
                    data = generator_form.cleaned_data
                    staged = stage_generated(name=data["name"], task=data["task"], n=data["n"], seed=data["seed"], split=data["split"], params=data["params"])
        except ValidationError as exc:
            target = upload_form if request.POST.get("kind") == "upload" else generator_form
            for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                target.add_error(field if field in target.fields else None, errors)
        if staged is not None:
            _remember(request, staged)
            return page(request, "lab/dataset_report.html", {"staged": staged, "preview": staged_preview(staged)}, nav="datasets")
    knobs = {name: task_knobs(name) for name in tasks}
    return page(request, "lab/dataset_new.html", {"generator_form": generator_form, "upload_form": upload_form, "knobs": knobs}, nav="datasets")


@team_page
@require_POST
def dataset_save(request, team, access):
    access.require("write")
    data = request.session.get(SESSION_STAGED, {}).get(request.POST.get("token", ""))
    if data is None:
        messages.error(request, "That validation report has expired; upload or generate again.")
        return HttpResponseRedirect(reverse("dataset_new"))
    try:
        dataset = dataset_create(team=team, user=request.user, staged=StagedDataset.from_session(data))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return HttpResponseRedirect(reverse("dataset_new"))
    table = request.session.get(SESSION_STAGED, {})
    table.pop(request.POST.get("token", ""), None)
    request.session[SESSION_STAGED] = table
    messages.success(request, f"Saved {dataset.name} v{dataset.version} ({dataset.row_count:,} rows).")
    return HttpResponseRedirect(reverse("dataset", args=[dataset.id]))


@login_required
def dataset_detail(request, dataset_id: int):
    dataset, access = get_for_user(request.user, Dataset, id=dataset_id)
    versions = Dataset.objects.filter(team_id=dataset.team_id, name=dataset.name).order_by("-version")
    return page(
        request,
        "lab/dataset_detail.html",
        {"dataset": dataset, "versions": versions, "preview": file_preview(dataset.path), "can_write": access.can_write,
         "integrity": dataset_integrity(dataset)},
        nav="datasets",
    )
