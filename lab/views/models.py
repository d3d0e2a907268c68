"""The Models page: registered models (hub ids, admin-registered folders) and run checkpoints, with lineage."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from lab.forms_models import HubModelForm
from lab.selectors.models import checkpoint_models, registered_models
from lab.services.model_registry import model_register_hub
from lab.views.common import page, team_page


def _render(request, team, access, form, *, status=200):
    return page(request, "lab/models.html", {
        "models": registered_models(team), "checkpoints": checkpoint_models(team), "form": form,
        "can_write": access.can_write,
    }, status=status, nav="models")


@team_page
def model_list(request, team, access):
    return _render(request, team, access, HubModelForm())


@team_page
@require_POST
def model_register(request, team, access):
    access.require("write")
    form = HubModelForm(request.POST)
    if form.is_valid():
        try:
            model = model_register_hub(team=team, user=request.user, name=form.cleaned_data["name"],
                                       hub_id=form.cleaned_data["hub_id"])
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(request, f"Registered {model.name} as {model.reference}.")
            return HttpResponseRedirect(reverse("models") + f"#model-{model.id}")
    return _render(request, team, access, form, status=400)
