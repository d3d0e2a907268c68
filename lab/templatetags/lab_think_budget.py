"""The run page's think-budget section: the curve of an evaluation with think budgets
(lab.selectors.think_budget), drawn by static/lab/findings.js."""
from django import template

from lab.selectors.think_budget import think_budget_curve

register = template.Library()


@register.inclusion_tag("lab/_think_budget_curve.html")
def think_budget_section(run):
    return {"run": run, "curve": think_budget_curve(run)}
