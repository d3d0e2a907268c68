"""Team admins manage members; other roles only read the list; a team keeps one admin."""
from lab.models import Membership, Role
from lab.services.traces import has_reflection, language_mix
from tests.lab.conftest import make_user


def test_admin_adds_changes_and_removes_a_member(owner_client, lab):
    newcomer = make_user("newcomer")
    owner_client.post("/team/members", {"username": "newcomer", "role": "viewer"})
    assert Membership.objects.get(team=lab.team, user=newcomer).role == Role.VIEWER
    owner_client.post("/team/members", {"username": "newcomer", "role": "researcher"})
    assert Membership.objects.get(team=lab.team, user=newcomer).role == Role.RESEARCHER
    owner_client.post("/team/members", {"remove": newcomer.id})
    assert not Membership.objects.filter(team=lab.team, user=newcomer).exists()


def test_the_last_admin_cannot_step_down(owner_client, lab):
    response = owner_client.post("/team/members", {"username": "owner", "role": "viewer"}, follow=True)
    assert "at least one admin" in response.content.decode()
    assert Membership.objects.get(team=lab.team, user=lab.owner).role == Role.ADMIN


def test_reviewer_sees_members_but_cannot_change_them(teammate_client, lab):
    assert teammate_client.get("/team/members").status_code == 200
    assert teammate_client.post("/team/members", {"username": "teammate", "role": "admin"}).status_code == 403
    assert Membership.objects.get(team=lab.team, user=lab.teammate).role == Role.REVIEWER


def test_reflection_markers_and_language_mix():
    assert has_reflection("So 5. Wait, let me check.") and not has_reflection("Waiter brings 5.")
    assert language_mix("the sum is 12") == 0.0
    assert language_mix("the sum 是 twelve") == 0.25
    assert language_mix("12 34") is None
