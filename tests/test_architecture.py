"""The direction of dependencies in ARCHITECTURE.md, checked by parsing every module's imports.

clients <- projects <- approvals <- billing <- integrations, reports

Domain modules import only their own app and apps to their left. Interface modules (views, api,
admin, forms, management commands, tasks...) may call any app's services. Nothing imports
integrations or reports except config, and only integrations/http.py imports requests.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RANK = {"clients": 0, "projects": 1, "approvals": 2, "billing": 3, "integrations": 4, "reports": 4}
LEAVES = {"integrations", "reports"}
INTERFACE_MODULES = {"views", "api", "admin", "forms", "tasks", "urls", "serializers", "filters",
                     "context_processors", "webhooks"}
INTERFACE_PACKAGES = {"views", "api", "admin", "management", "templatetags", "fakes"}


def _modules():
    for app in RANK:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or "tests" in parts:
                continue
            yield app, path


def _is_interface(path: Path) -> bool:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[-1] in INTERFACE_MODULES or any(part in INTERFACE_PACKAGES for part in parts[1:])


def _imported_packages(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations():
    found = []
    for app, path in _modules():
        where = path.relative_to(ROOT)
        interface = _is_interface(path)
        for line, package in _imported_packages(path):
            if package == "requests" and where != Path("integrations/http.py"):
                found.append(f"{where}:{line} imports requests; only integrations/http.py may")
            if package not in RANK or package == app:
                continue
            if package in LEAVES:
                found.append(f"{where}:{line} imports {package}; nothing but config may")
            elif not interface and RANK[package] >= RANK[app]:
                found.append(f"{where}:{line} ({app}, domain) imports {package}, which is not to its left")
    return found


def test_every_import_follows_the_direction_of_dependencies():
    assert violations() == []


def test_the_check_catches_a_wrong_arrow(tmp_path, monkeypatch):
    rogue = ROOT / "clients" / "_rogue_import_probe.py"
    rogue.write_text("from billing import pipeline\nimport requests\n")
    try:
        found = violations()
    finally:
        rogue.unlink()
    assert any("clients/_rogue_import_probe.py:1" in v and "billing" in v for v in found)
    assert any("clients/_rogue_import_probe.py:2 imports requests" in v for v in found)


@pytest.mark.parametrize("app", sorted(RANK))
def test_every_app_is_a_package(app):
    assert (ROOT / app / "__init__.py").exists()
