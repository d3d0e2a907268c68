"""Team membership, managed by the team's admins."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from lab.access import require_team_role
from lab.models import Membership, Role, Team


def _other_admins(team: Team, user_id: int) -> bool:
    return Membership.objects.filter(team=team, role=Role.ADMIN).exclude(user_id=user_id).exists()


@transaction.atomic
def member_set(*, team: Team, admin, username: str, role: str) -> Membership:
    """Add `username` to the team with `role`, or change their role."""
    require_team_role(admin, team, "admin")
    if role not in Role.values:
        raise ValidationError({"role": f"one of {', '.join(Role.values)}"})
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ValidationError({"username": f"no user {username.strip()[:150]!r}"})
    current = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if current and current.role == Role.ADMIN and role != Role.ADMIN and not _other_admins(team, user.id):
        raise ValidationError({"role": "a team keeps at least one admin"})
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def member_remove(*, team: Team, admin, user_id: int) -> None:
    require_team_role(admin, team, "admin")
    membership = Membership.objects.select_for_update().filter(team=team, user_id=user_id).first()
    if membership is None:
        raise ValidationError("not a member")
    if membership.role == Role.ADMIN and not _other_admins(team, user_id):
        raise ValidationError("a team keeps at least one admin")
    membership.delete()
