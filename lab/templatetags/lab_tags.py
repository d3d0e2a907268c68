"""Template helpers. Model output passes only through filters that escape every piece of it."""
from __future__ import annotations

import math

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from lab.services.references import redact_paths as _redact_paths
from lab.services.traces import split_markers

register = template.Library()


@register.filter
def redact_paths(text):
    """A trainer's message with the data volume's location hidden (pages show references, not paths)."""
    return _redact_paths(text or "")


@register.filter
def reflect(text) -> str:
    """Escape `text` and wrap reflection markers ("wait", "let me check", …) in <mark>."""
    pieces = []
    for segment, is_marker in split_markers(str(text or "")):
        escaped = conditional_escape(segment)
        pieces.append(format_html('<mark class="reflect">{}</mark>', segment) if is_marker else escaped)
    return mark_safe("".join(str(p) for p in pieces))  # every piece above is escaped


@register.filter
def duration(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "—"
    return f"{value:.{int(digits)}g}"


@register.filter
def pct(value) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f}%"


@register.filter
def get(mapping, key):
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def hours(value) -> str:
    return "—" if not value else f"{value:.2f}"


@register.simple_tag
def status_badge(status: str) -> str:
    return format_html('<span class="badge s-{}">{}</span>', status, status)


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (pagination links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params[key] = value
    return params.urlencode()


@register.filter
def pretty_json(value) -> str:
    """Indented JSON as plain text (the template escapes it)."""
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _age(moment, now) -> str:
    if moment is None:
        return "—"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@register.simple_tag
def run_rows(rows, benchmarks, compare=False, best=None):
    """The runs table's body. Every value goes through escape(); the overview renders up to 1,000
    rows, where per-row template includes (or one format_html per cell) cost more than the database.
    best: benchmark → the best score among the listed runs; the cells holding it are marked."""
    from django.urls import reverse
    from django.utils import timezone
    from html import escape

    def e(value) -> str:  # django.utils.html.escape without its lazy-string wrapper (30,000 calls a page)
        return escape(str(value))

    runs_prefix = reverse("runs")
    now = timezone.now()
    out = []
    for row in rows:
        run = row.run
        sub = " · ".join(x for x in (run.kind, run.recipe, run.queue) if x)
        if run.stage_count > 1:  # one bar across the stages, the current stage named under it
            title = f"overall step {run.overall_step} of {run.overall_total}"
            where = (f"{run.overall_step} / {run.overall_total} · {e(run.stage_name)} {run.stage_step}"
                     f"{f' / {run.total_steps}' if run.total_steps else ''}")
        else:
            title = f"step {run.stage_step} of {run.total_steps or '?'}"
            where = f"{run.stage_step}{f' / {run.total_steps}' if run.total_steps else ''}"
        check = f'<td><input type="checkbox" name="runs" value="{run.id}" aria-label="compare {e(run.name)}"></td>' if compare else ""
        cells = []
        for b in benchmarks:
            value = row.best.get(b)
            if value is not None and best and best.get(b) is not None and value >= best[b]:
                cells.append(f'<td class="num best" title="best {e(b)} of these runs">★ {e(pct(value))}</td>')
            else:
                cells.append(f'<td class="num">{e(pct(value))}</td>')
        scores = "".join(cells)
        quick = ' <span class="badge quick" title="a quick (smoke-test) run: the recipe\'s --quick">quick</span>' if run.quick else ""
        out.append(
            f'<tr{" class=quick-run" if run.quick else ""}>{check}'
            f'<td><a href="{runs_prefix}{run.id}/">{e(run.name)}</a>{quick}<div class="sub">{e(sub)}</div></td>'
            f'<td><span class="badge s-{e(run.status)}">{e(run.status)}</span></td>'
            f'<td><div class="progress" title="{title}"><span style="width: {int(round(run.progress * 100))}%"></span></div>'
            f'<div class="sub">{where}</div></td>'
            f"<td>{e(duration(run.eta_s)) if run.is_active else '—'}</td>"
            f"<td>{_age(run.created_at, now)}</td>"
            f'<td class="num">{e(hours(row.cpu_hours))}</td><td class="num">{e(hours(row.gpu_hours))}</td>{scores}'
            f"<td>{e(_age(run.last_activity_at, now))}</td><td>{e(run.worker_name) if run.worker_name else '—'}</td>"
            f"<td>{e(run.project_name) if run.project_name else '—'}</td><td>{e(run.created_by_username) if run.created_by_username else '—'}</td>"
            "</tr>"
        )
    return mark_safe("\n".join(out))  # every interpolated value above is escaped or an int
