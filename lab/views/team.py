from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from lab.access import SESSION_TEAM_KEY, get_for_user
from lab.models import Membership, Role, Team
from lab.services.teams import member_remove, member_set
from lab.views.common import page, team_page


@login_required
@require_POST
def switch_team(request):
    team, _ = get_for_user(request.user, Team, id=request.POST.get("team", ""))
    request.session[SESSION_TEAM_KEY] = team.id
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/"
    return HttpResponseRedirect(target)


@team_page
def members(request, team, access):
    """Members and their roles; admins add, change and remove."""
    if request.method == "POST":
        access.require("admin")
        try:
            if request.POST.get("remove"):
                member_remove(team=team, admin=request.user, user_id=int(request.POST["remove"]))
                messages.success(request, "Member removed.")
            else:
                m = member_set(team=team, admin=request.user, username=request.POST.get("username", ""), role=request.POST.get("role", ""))
                messages.success(request, f"{m.user.username} is now {m.role}.")
        except (ValidationError, ValueError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return HttpResponseRedirect(reverse("members"))
    rows = Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    return page(request, "lab/members.html", {"rows": rows, "roles": Role.choices, "is_admin": access.can("admin")})
