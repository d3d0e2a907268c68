"""Teams, their members' roles and projects. Every object in the lab belongs to one team."""
from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"  # manages members, and everything a researcher does
    RESEARCHER = "researcher", "Researcher"  # datasets and runs: create, cancel, resume, fork
    REVIEWER = "reviewer", "Reviewer"  # reads everything, annotates traces
    VIEWER = "viewer", "Viewer"  # reads


class Team(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def role_of(self, user) -> str | None:
        if not user.is_authenticated:
            return None
        return (
            Membership.objects.filter(team=self, user=user).values_list("role", flat=True).first()
        )


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESEARCHER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def can_annotate(self) -> bool:
        return self.role in (Role.ADMIN, Role.RESEARCHER, Role.REVIEWER)


class Project(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="project_name_per_team")]

    def __str__(self) -> str:
        return self.name
