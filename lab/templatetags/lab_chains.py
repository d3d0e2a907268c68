"""Numbers on the chain and Findings pages."""
from django import template

register = template.Library()


@register.filter
def num(value) -> str:
    """0.625 → "0.625", 31.25 → "31.25", None → "—"."""
    if value is None:
        return "—"
    try:
        return f"{float(value):.3f}".rstrip("0").rstrip(".") if abs(float(value)) < 1000 else f"{float(value):.0f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def signed(value) -> str:
    """A difference: "+0.125", "−0.05", "0", "—"."""
    if value is None:
        return "—"
    text = num(abs(float(value)))
    return text if float(value) == 0 else ("+" if value > 0 else "−") + text


@register.filter
def spread(entry) -> str:
    """{"mean", "sd", "n"} → "0.5 ± 0.1 (n=3)"."""
    if not entry:
        return "—"
    sd = entry.get("sd")
    return f"{num(entry['mean'])}" + (f" ± {num(sd)}" if sd is not None else "") + f" (n={entry['n']})"


@register.filter
def cell(value) -> str:
    """A table cell: a number as `num` writes it, text as it is, None as "—"."""
    if isinstance(value, str):
        return value
    return num(value)
