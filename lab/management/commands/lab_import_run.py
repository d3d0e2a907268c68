"""python manage.py lab_import_run RUN_DIR --team SLUG [--project NAME] [--name NAME]"""
from lab.management.importing import ImportCommand
from lab.services.imports import run_import


class Command(ImportCommand):
    help = "Import a run directory made by `python -m r1model` (config, events, checkpoints); safe to repeat."
    name_help = "run name (default: the config's name, else the folder name)"

    def import_folder(self, *, run_dir, team, project, name) -> str:
        result = run_import(run_dir=run_dir, team=team, project=project, name=name)
        verb = "imported" if result.created else "updated"
        return (f"{verb} run {result.run.id} “{result.run.name}”: {result.new_events} new events, "
                f"status {result.run.status}, step {result.run.step}")
