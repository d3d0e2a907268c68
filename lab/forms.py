"""Forms: the new-run form generated from RunConfig's JSON Schema, datasets, annotations."""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

from lab.models import Annotation, Run
from lab.services.run_config import resolve

LONG_TEXT = 80  # defaults longer than this (or multi-line) get a text area


class JSONTextField(forms.CharField):
    """A list or object typed as JSON."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "mono"})

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if value in ("", None):
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None


def _help(prop: dict) -> str:
    text = (prop.get("description") or "").strip()
    if "default" in prop:
        default = prop["default"]
        shown = json.dumps(default) if isinstance(default, (dict, list, bool)) or default is None else str(default)
        if len(shown) > 120:
            shown = shown[:117] + "…"
        text = f"{text} Default: {shown}." if text else f"Default: {shown}."
    return text


def _field_for(prop: dict, defs: dict) -> forms.Field:
    prop = resolve(prop, defs)
    kind = prop.get("type")
    nullable = prop.get("nullable", False) or (isinstance(kind, list) and "null" in kind)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    common: dict[str, Any] = {"required": False, "help_text": _help(prop), "label": prop.get("title")}
    enum = prop.get("enum") or ([prop["const"]] if "const" in prop else None)
    if enum:
        choices = [("", "—")] if nullable else []
        choices += [(str(v), str(v)) for v in enum]
        return forms.TypedChoiceField(choices=choices, coerce=_enum_coercer(enum), empty_value=None, **common)
    if kind == "boolean":
        return forms.BooleanField(**common)
    if kind == "integer":
        return forms.IntegerField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "string":
        default = str(prop.get("default") or "")
        widget = forms.Textarea(attrs={"rows": 4, "class": "mono"}) if ("\n" in default or len(default) > LONG_TEXT) else None
        return forms.CharField(widget=widget, strip=False, **common)
    return JSONTextField(**common)


def _enum_coercer(enum: list):
    table = {str(v): v for v in enum}
    return lambda raw: table.get(raw, raw)


class ConfigForm(forms.Form):
    """RunConfig's fields as form fields: nested objects become `section.field`, grouped by section.

    The config's `name` is not a field: the run has one name, and it fills config.name (lab.views.runs).
    """

    OMITTED = ("name",)
    ESSENTIAL = ("model.source",)  # shown among the run's essentials, above the sections

    def __init__(self, *args, schema: dict, config: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.schema = schema
        defs = schema.get("$defs", {})
        self.sections: list[tuple[str, list[str]]] = [("General", [])]
        self._paths: dict[str, tuple[str, ...]] = {}
        self.baseline: dict[str, str] = {}
        self.baseline_label = ""
        for name, prop in schema.get("properties", {}).items():
            if name in self.OMITTED:
                continue
            resolved = resolve(prop, defs)
            if resolved.get("type") == "object" and resolved.get("properties"):
                names = []
                for sub, sub_prop in resolved["properties"].items():
                    key = f"{name}.{sub}"
                    self.fields[key] = _field_for(sub_prop, defs)
                    self.fields[key].label = sub_prop.get("title") or sub.replace("_", " ")
                    self._paths[key] = (name, sub)
                    names.append(key)
                self.sections.append((name, names))
            else:
                self.fields[name] = _field_for(prop, defs)
                self.fields[name].label = prop.get("title") or name.replace("_", " ")
                self._paths[name] = (name,)
                self.sections[0][1].append(name)
        values = config if config is not None else {}
        for key, path in self._paths.items():
            value: Any = values
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                value = _default_at(schema, path)
            if value is not None:
                self.fields[key].initial = value

    def initial_config(self) -> dict:
        """The config this form submits when nothing is edited: its initial values as a browser posts them,
        cleaned as a submission would be (the form's own representation of every value)."""
        data = {}
        for name, field in self.fields.items():
            value = self.get_initial_for_field(field, name)
            if isinstance(field, forms.BooleanField):
                if value:
                    data[self.add_prefix(name)] = "on"
            elif value is not None:
                data[self.add_prefix(name)] = field.prepare_value(value)
        submitted = ConfigForm(data, schema=self.schema, prefix=self.prefix)
        return submitted.to_config() if submitted.is_valid() else {}

    def section_fields(self):
        for title, names in self.sections:
            if names:
                yield title, [self[name] for name in names]

    def compare_to(self, config: dict, label: str) -> None:
        """Mark the fields whose value differs from `config` (a recipe's config, or {} for the defaults)."""
        self.baseline_label = label
        self.baseline = {key: _shown(self.fields[key], self._value_in(config, path)) for key, path in self._paths.items()}

    def _value_in(self, config: dict, path: tuple[str, ...]):
        value: Any = config
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return _default_at(self.schema, path) if value is None else value

    def row(self, key: str) -> dict:
        """A field as the template lays it out: the field, the value it is compared with, whether it differs."""
        field = self[key]
        baseline = self.baseline.get(key)
        return {"field": field, "baseline": baseline,
                "differs": baseline is not None and not _same(_shown(field.field, field.value()), baseline)}

    def essential_rows(self) -> list[dict]:
        return [self.row(key) for key in self.ESSENTIAL if key in self.fields]

    def section_rows(self) -> list[dict]:
        """The sections below the essentials, each with its rows, how many differ and whether one has errors."""
        out = []
        for title, names in self.sections:
            rows = [self.row(key) for key in names if key not in self.ESSENTIAL]
            if rows:
                out.append({"title": title, "rows": rows, "differ": sum(r["differs"] for r in rows),
                            "errors": any(r["field"].errors for r in rows)})
        return out

    def to_config(self) -> dict:
        """The cleaned values as a nested config dict (blank optional fields left out)."""
        config: dict = {}
        for key, path in self._paths.items():
            value = self.cleaned_data.get(key)
            if value is None or value == "":
                default = _default_at(self.schema, path)
                if default is None:
                    continue
                if not isinstance(self.fields[key], forms.BooleanField):
                    value = default
            target = config
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        return config


def _shown(field: forms.Field, value) -> str:
    """A value as the form's widget holds it (what the browser shows and posts), for comparison."""
    if isinstance(field, forms.BooleanField):
        return "on" if value not in (None, False, "", "off", "false", "False") else ""
    if value is None:
        return ""
    prepared = field.prepare_value(value)
    return "" if prepared is None else str(prepared)


def _same(a: str, b: str) -> bool:
    """Equal as shown, or as numbers (0.00010 is 1e-4), or as JSON (spacing apart)."""
    if a == b:
        return True
    for parse in (float, json.loads):
        try:
            return parse(a) == parse(b)
        except (TypeError, ValueError):
            continue
    return False


def _default_at(schema: dict, path: tuple[str, ...]):
    defs = schema.get("$defs", {})
    node = schema
    for part in path:
        node = resolve(node.get("properties", {}).get(part, {}), defs)
    return node.get("default")


class RunForm(forms.Form):
    name = forms.CharField(max_length=200)
    project = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    queue = forms.ChoiceField(choices=Run.Queue.choices, initial=Run.Queue.CPU, help_text="cpu: any node; gpu: a GPU node (one process on one GPU, with the built-in sampler).")
    gpus = forms.IntegerField(
        required=False, min_value=0, max_value=64, initial=0, label="GPUs",
        help_text="GPUs on one worker (0 = none). More than 0 runs on the gpu queue; more than 1 starts one "
        "process per GPU (needs distributed backend deepspeed). The run waits, saying why, until a worker has them free.",
    )
    recipe = forms.ChoiceField(required=False, help_text="A recipe runs its own pipeline; the fields below then only override it.")
    dataset = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Dataset",
        help_text="A saved dataset of this team; replaces the config's datasets with this file.",
    )
    quick = forms.BooleanField(required=False, help_text="Scaled down to finish in about a minute (smoke test).")
    eval_every = forms.IntegerField(
        required=False, min_value=0, initial=0, label="Evaluate every (steps)",
        help_text="Each checkpoint at a multiple of this many steps is scored on the benchmarks by a separate "
        "evaluate run on a free worker, without pausing training; 0 = off.",
    )
    config_json = JSONTextField(
        required=False, label="Config as JSON", help_text="Optional: a whole RunConfig as JSON; replaces the fields below."
    )

    def __init__(self, *args, projects=(), recipe_names=(), datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "—")] + [(p.id, p.name) for p in projects]
        self.fields["dataset"].choices = [("", "— as in the config —")] + [(d.id, f"{d.name} v{d.version} ({d.row_count} rows)") for d in datasets]
        self.fields["recipe"].choices = [("", "— none (use the config below) —")] + [(r, r) for r in recipe_names]


class GeneratorDatasetForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Letters, digits, - and _. A new version if the name exists.")
    task = forms.ChoiceField()
    n = forms.IntegerField(min_value=1, max_value=200_000, initial=1000, label="Rows")
    seed = forms.IntegerField(initial=0)
    split = forms.ChoiceField(choices=[("train", "train"), ("test", "test")], initial="train")
    params = JSONTextField(required=False, label="Difficulty parameters (JSON)", help_text='e.g. {"digits": 3}')

    def __init__(self, *args, tasks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = [(t, t) for t in tasks]


class UploadDatasetForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Letters, digits, - and _. A new version if the name exists.")
    file = forms.FileField(help_text="JSONL, CSV or Parquet with problem and answer columns.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.LAB_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"{upload.name}: {upload.size:,} bytes; the limit is {settings.LAB_MAX_UPLOAD_BYTES:,} (LAB_MAX_UPLOAD_BYTES)"
            )
        suffix = upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
        if suffix not in ("jsonl", "json", "csv", "parquet"):
            raise forms.ValidationError(f"{upload.name}: expected .jsonl, .csv or .parquet")
        return upload


class AnnotationForm(forms.Form):
    rating = forms.ChoiceField(choices=Annotation.Rating.choices, widget=forms.RadioSelect)
    labels = forms.CharField(required=False, max_length=800, help_text="Comma-separated, e.g. reflection, lucky-guess")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)
