"""What every page shares: the current team, and the page context."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from lab.access import current_team, teams_of


def team_page(view):
    """login required; passes (request, team, access); a user in no team sees how to get one."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        team, access = current_team(request)
        if team is None:
            return render(request, "lab/no_team.html", status=200)
        return view(request, team, access, *args, **kwargs)

    return wrapper


def page(request, template: str, context: dict, *, status: int = 200, nav: str = ""):
    team, access = current_team(request)
    context = {"team": team, "access": access, "teams": teams_of(request.user), "nav": nav, **context}
    return render(request, template, context, status=status)


def int_param(params, name: str, default: int | None = None) -> int | None:
    try:
        return int(params.get(name, ""))
    except (TypeError, ValueError):
        return default
