"""python manage.py lab_import_run RUN_DIR --team SLUG [--project NAME] [--name NAME]"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from lab.models import Project, Team
from lab.services.imports import run_import


class Command(BaseCommand):
    help = "Import a run directory made by `python -m r1model` (config, events, checkpoints); safe to repeat."

    def add_arguments(self, parser):
        parser.add_argument("run_dir")
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--project", default="", help="project name (created if missing)")
        parser.add_argument("--name", default="", help="run name (default: the config's name, else the folder name)")

    def handle(self, *args, run_dir, team, project, name, **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"--team: no team with slug {team!r}")
        project_obj = Project.objects.get_or_create(team=found, name=project)[0] if project else None
        try:
            result = run_import(run_dir=run_dir, team=found, project=project_obj, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        verb = "imported" if result.created else "updated"
        self.stdout.write(
            f"{verb} run {result.run.id} “{result.run.name}”: {result.new_events} new events, "
            f"status {result.run.status}, step {result.run.step}"
        )
