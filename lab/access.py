"""Who may see and do what: one helper returns an object and the user's role in its team.

Every object belongs to one team. A user outside that team gets 404 — the object might as well not
exist — on every page and API path; a teammate whose role does not allow an action gets 403.
Roles (lab.models.Role): admin (members, and all a researcher does), researcher (datasets and runs:
create, cancel, resume, fork), reviewer (reads all, annotates), viewer (reads).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import Http404

from lab.models import (
    Annotation,
    CheckpointRecord,
    Dataset,
    EvalResult,
    Membership,
    Metric,
    Project,
    Role,
    Run,
    RunLog,
    Team,
    Trace,
)

# What each action needs.
ACTION_ROLES = {
    "read": {Role.ADMIN, Role.RESEARCHER, Role.REVIEWER, Role.VIEWER},
    "annotate": {Role.ADMIN, Role.RESEARCHER, Role.REVIEWER},
    "write": {Role.ADMIN, Role.RESEARCHER},
    "admin": {Role.ADMIN},
}

# The path from each model to its team's id.
TEAM_ID_PATH = {
    Team: "id",
    Project: "team_id",
    Dataset: "team_id",
    Run: "team_id",
    Metric: "run__team_id",
    Trace: "run__team_id",
    CheckpointRecord: "run__team_id",
    EvalResult: "run__team_id",
    RunLog: "run__team_id",
    Annotation: "trace__run__team_id",
}


@dataclass(frozen=True)
class Access:
    """The user's standing in one team."""

    team_id: int
    role: str

    def can(self, action: str) -> bool:
        return self.role in ACTION_ROLES[action]

    def require(self, action: str) -> None:
        if not self.can(action):
            raise PermissionDenied(f"your role ({self.role}) does not allow this ({action})")

    @property
    def can_write(self) -> bool:
        return self.can("write")

    @property
    def can_annotate(self) -> bool:
        return self.can("annotate")


def get_for_user(user, model_or_queryset: type[Model] | QuerySet, *, action: str = "read", **lookup):
    """The object matching `lookup` in one of `user`'s teams, and the user's Access to it.

    Raises Http404 when it does not exist or belongs to a team the user is not in (the two are
    indistinguishable on purpose), PermissionDenied when the user's role does not allow `action`.
    """
    if not getattr(user, "is_authenticated", False):
        raise Http404
    queryset = model_or_queryset if isinstance(model_or_queryset, QuerySet) else model_or_queryset._default_manager.all()
    team_path = TEAM_ID_PATH[queryset.model]
    role = Membership.objects.filter(team_id=OuterRef(team_path), user=user).values("role")[:1]
    try:
        obj = queryset.annotate(_lab_role=Subquery(role)).filter(_lab_role__isnull=False).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    except queryset.model.MultipleObjectsReturned:
        raise Http404 from None
    access = Access(team_id=_team_id(obj, team_path), role=obj._lab_role)
    access.require(action)
    return obj, access


def _team_id(obj, path: str) -> int:
    value = obj
    for part in path.split("__"):
        value = getattr(value, part)
    return value


def team_access(user, team: Team | int) -> Access | None:
    """The user's Access to `team`, or None when not a member."""
    team_id = team.id if isinstance(team, Team) else team
    if not getattr(user, "is_authenticated", False):
        return None
    role = Membership.objects.filter(team_id=team_id, user=user).values_list("role", flat=True).first()
    return Access(team_id=team_id, role=role) if role else None


def require_team_role(user, team: Team | int, action: str) -> Access:
    """For services: the same rule as the pages (404 outside the team, 403 for a weak role)."""
    access = team_access(user, team)
    if access is None:
        raise Http404
    access.require(action)
    return access


def teams_of(user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name")


SESSION_TEAM_KEY = "lab_team_id"


def current_team(request) -> tuple[Team | None, Access | None]:
    """The team the user is working in: the one chosen last (session), else their first."""
    teams = list(teams_of(request.user))
    if not teams:
        return None, None
    chosen = request.session.get(SESSION_TEAM_KEY)
    team = next((t for t in teams if t.id == chosen), teams[0])
    return team, team_access(request.user, team)
