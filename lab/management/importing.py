"""What the lab_import_* commands share: a folder made by the CLI, --team (its slug), --project (created if
missing), --name; a refused folder becomes one CommandError line."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from lab.models import Project, Team


class ImportCommand(BaseCommand):
    name_help = "run name"

    def add_arguments(self, parser):
        parser.add_argument("run_dir")
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--project", default="", help="project name (created if missing)")
        parser.add_argument("--name", default="", help=self.name_help)

    def handle(self, *args, run_dir, team, project, name, **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"--team: no team with slug {team!r}")
        project_obj = Project.objects.get_or_create(team=found, name=project)[0] if project else None
        try:
            line = self.import_folder(run_dir=run_dir, team=found, project=project_obj, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(line)

    def import_folder(self, *, run_dir: str, team: Team, project: Project | None, name: str) -> str:
        """Import the folder; the one line to print."""
        raise NotImplementedError
