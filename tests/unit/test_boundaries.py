"""The architecture's boundaries: r1model never imports Django, lab never imports torch.

Each package's modules are imported in a fresh interpreter and sys.modules is inspected.
"""
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_of(package: str) -> list[str]:
    pkg_dir = ROOT / package.replace(".", "/")
    names = [package]
    for info in pkgutil.walk_packages([str(pkg_dir)], prefix=package + "."):
        if ".migrations" in info.name or ".tests" in info.name:
            continue
        names.append(info.name)
    return sorted(names)


def forbidden_after_import(modules: list[str], forbidden: str, setup: str = "") -> str:
    script = "\n".join(
        [
            "import importlib, sys",
            setup,
            f"for name in {modules!r}:",
            "    importlib.import_module(name)",
            f"bad = sorted(m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.'))",
            "print(','.join(bad[:5]))",
        ]
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_r1model_never_imports_django():
    assert forbidden_after_import(modules_of("r1model"), "django") == ""


LAB_SETUP = "\n".join(
    [
        "import os, tempfile",
        "os.environ.setdefault('DEBUG', 'true')",
        "os.environ['LAB_DATA_DIR'] = tempfile.mkdtemp()",
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'lab.settings'",
        "import django; django.setup()",
    ]
)


def test_lab_never_imports_torch():
    modules = [m for m in modules_of("lab") if not m.endswith(".site_urls") or True]
    assert forbidden_after_import(modules, "torch", setup=LAB_SETUP) == ""


@pytest.mark.parametrize("module", ["r1model.model.config", "r1model.train.config"])
def test_config_modules_import_without_torch(module):
    if not (ROOT / (module.replace(".", "/") + ".py")).exists():
        pytest.fail(f"{module} is missing")
    assert forbidden_after_import([module], "torch") == ""
