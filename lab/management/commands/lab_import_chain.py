"""python manage.py lab_import_chain CHAIN_DIR --team SLUG [--project NAME] [--name NAME]"""
from lab.management.importing import ImportCommand
from lab.selectors.chains import read_comparison
from lab.services.chains import chain_import


class Command(ImportCommand):
    help = ("Import a chain directory made by `python -m r1model recipe run CHAIN --run-dir DIR` (or a bench/finding_*.py "
            "seed directory): its stage runs, events, lineage and comparison.json, shown on the Findings page once "
            "completed; safe to repeat.")
    name_help = "run name (default: the chain's name and the folder's)"

    def import_folder(self, *, run_dir, team, project, name) -> str:
        result = chain_import(run_dir=run_dir, team=team, project=project, name=name)
        run = result.run
        stages = ((run.result or {}).get("chain") or {}).get("stages") or []
        completed = sum(s.get("status") == "completed" for s in stages)
        line = (f"{'imported' if result.created else 'updated'} chain run {run.id} “{run.name}” ({run.recipe}): "
                f"{completed}/{len(stages)} stages completed, {result.new_stage_runs} new stage runs, status {run.status}")
        comparison = (run.result or {}).get("comparison")
        if comparison is not None:
            line += f", verdict {read_comparison(run.recipe, comparison)['verdict']['outcome']}"
        return line
