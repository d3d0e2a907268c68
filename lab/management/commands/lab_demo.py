"""Create the demo team and user when the lab has no users yet; print the login either way."""
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from lab.models import Membership, Project, Role, Team

LOGIN_FILE = "demo_login.txt"


class Command(BaseCommand):
    help = "Create a demo team and user if the lab has no users, and print the login."

    def handle(self, *args, **options):
        User = get_user_model()
        login_path = settings.LAB_DATA_DIR / LOGIN_FILE
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            with transaction.atomic():
                user = User.objects.create_user("demo", password=password, is_staff=True, is_superuser=True)
                team = Team.objects.create(slug="demo", name="Demo team")
                Membership.objects.create(team=team, user=user, role=Role.ADMIN)
                Project.objects.create(team=team, name="R1-Zero in miniature")
            login_path.parent.mkdir(parents=True, exist_ok=True)
            login_path.write_text(f"demo {password}\n")
            login_path.chmod(0o600)
        if login_path.exists():
            username, password = login_path.read_text().split()
            self.stdout.write(f"login: {username} / {password}  (stored in {login_path})")
        else:
            self.stdout.write("users exist already; log in with your account (manage.py createsuperuser adds one)")
