"""Filters of the Models page."""
from django import template

from lab.selectors.models import human_count as _human_count

register = template.Library()


@register.filter
def human_count(value) -> str:
    return _human_count(value)
