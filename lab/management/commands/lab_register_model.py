"""python manage.py lab_register_model --team SLUG --name NAME (--root ROOT --folder REL | --hub ORG/NAME[@REV])"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from lab.models import Team
from lab.services.model_registry import model_register_folder, model_roots
from lab.services.references import model_ref


class Command(BaseCommand):
    help = ("Register a model folder under one of the model roots (LAB_MODEL_ROOTS) for a team: its info "
            "(architecture, parameters, tokenizer, chat template) is read now. Admins only: the web page "
            "registers hub ids.")

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--name", required=True, help="the model's name in the team")
        parser.add_argument("--root", required=True, help="a root name of LAB_MODEL_ROOTS")
        parser.add_argument("--folder", required=True, help="the model folder, relative to the root")

    def handle(self, *args, team, name, root, folder, **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"--team: no team with slug {team!r}")
        if root not in model_roots():
            known = ", ".join(sorted(model_roots())) or "none configured"
            raise CommandError(f"--root: no model root {root!r} (LAB_MODEL_ROOTS: {known})")
        try:
            model = model_register_folder(team=found, name=name, root=root, folder=folder)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        info = model.info
        self.stdout.write(
            f"registered {model_ref(model.id)} “{model.name}” ({root}:{model.folder}): "
            f"{info.get('architecture') or 'unknown architecture'}, {info.get('parameters') or '?'} parameters"
            + (f"; {', '.join(info['problems'])}" if info.get("problems") else "")
        )
