"""python manage.py lab_import_chain CHAIN_DIR --team SLUG [--project NAME] [--name NAME]"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from lab.models import Project, Team
from lab.selectors.chains import read_comparison
from lab.services.chains import chain_import


class Command(BaseCommand):
    help = ("Import a chain directory made by `python -m r1model recipe run CHAIN --run-dir DIR` (or a bench/finding_*.py "
            "seed directory): its stage runs, events, lineage and comparison.json, shown on the Findings page once "
            "completed; safe to repeat.")

    def add_arguments(self, parser):
        parser.add_argument("run_dir")
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--project", default="", help="project name (created if missing)")
        parser.add_argument("--name", default="", help="run name (default: the chain's name and the folder's)")

    def handle(self, *args, run_dir, team, project, name, **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"--team: no team with slug {team!r}")
        project_obj = Project.objects.get_or_create(team=found, name=project)[0] if project else None
        try:
            result = chain_import(run_dir=run_dir, team=found, project=project_obj, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        run = result.run
        stages = ((run.result or {}).get("chain") or {}).get("stages") or []
        completed = sum(s.get("status") == "completed" for s in stages)
        line = (f"{'imported' if result.created else 'updated'} chain run {run.id} “{run.name}” ({run.recipe}): "
                f"{completed}/{len(stages)} stages completed, {result.new_stage_runs} new stage runs, status {run.status}")
        comparison = (run.result or {}).get("comparison")
        if comparison is not None:
            line += f", verdict {read_comparison(run.recipe, comparison)['verdict']['outcome']}"
        self.stdout.write(line)
