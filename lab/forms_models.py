"""The Models page's form: register a Hugging Face hub id (folders are registered by an admin only)."""
from django import forms


class HubModelForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="what this team calls it, e.g. qwen-0.5b-instruct")
    hub_id = forms.CharField(
        max_length=310, label="Hub id",
        help_text="org/name or org/name@revision (a branch, tag or commit); the worker downloads it when a run starts",
    )
