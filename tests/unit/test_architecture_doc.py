"""docs/ARCHITECTURE.md stays true: every repository path it names in backticks exists, and every
`path.py:name` names a function, class or constant defined in that file."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}


def mentioned_paths() -> list[str]:
    """Backticked spans that name a repository path: `dir/…` under a top-level entry, or any `….py`.
    Placeholders (`<id>`, `step-N`), URLs and run-directory files (not under a top-level entry) are not paths."""
    paths = []
    for span in re.findall(r"`([^`\n]+)`", DOC.read_text()):
        token = span.split(":", 1)[0] if re.match(r"^[\w./-]+\.py:\w+$", span) else span
        if " " in token or "<" in token or token.startswith("/"):
            continue
        if token.endswith(".py") or ("/" in token and token.split("/", 1)[0] in TOP_LEVEL):
            paths.append(span)
    return paths


def test_the_doc_names_the_packages_and_their_modules():
    paths = mentioned_paths()
    assert len(paths) > 30, paths
    for package in ("lab/", "workers/", "r1model/"):
        assert package in paths


def test_every_path_in_the_architecture_doc_exists():
    missing = [p for p in mentioned_paths() if not (ROOT / p.split(":", 1)[0]).exists()]
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_named_definition_exists_in_its_file():
    wrong = []
    for span in mentioned_paths():
        if ":" not in span:
            continue
        path, name = span.split(":", 1)
        source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
        if not re.search(rf"^\s*(def|class)\s+{name}\b|^{name}\b\s*[:=]", source, re.M):
            wrong.append(span)
    assert not wrong, f"docs/ARCHITECTURE.md names definitions its files do not have: {wrong}"
