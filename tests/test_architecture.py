"""The rules between the parts (ARCHITECTURE.md), checked over the imports of every module.

Each rule is a statement about which package may import which; a violation names the module,
the line and the rule. Exceptions are listed with the reason and the owner who removes them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"

# module -> reason; each entry is temporary and names who removes it.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("cli-no-sql", "hub/cli/health.py"): "health engineer moves _rows to hub/store/health_queries",
    ("rich-only-in-cli", "hub/portfolio/render.py"): "portfolio engineer moves it to hub/cli",
}


def modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = rel(path)[:-3].replace("/", ".")
    if package.endswith(".__init__"):
        package = package[: -len(".__init__")]
    else:
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "hub":
                # ``from hub import clock`` imports the module hub.clock (or a public name)
                found += [(node.lineno, f"hub.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, name))
    return found


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def in_folder(path: Path, *folders: str) -> bool:
    return any(rel(path).startswith(folder.rstrip("/") + "/") for folder in folders)


def violations(rule: str, files: list[Path], forbidden) -> list[str]:
    out = []
    for path in files:
        if (rule, rel(path)) in KNOWN_EXCEPTIONS:
            continue
        for line, name in imports(path):
            if forbidden(name):
                out.append(f"{rel(path)}:{line} imports {name}")
    return out


CORE = [p for p in modules(HUB) if not in_folder(p, "hub/sandbox")]
LIBRARY = [p for p in CORE if not in_folder(p, "hub/cli") and p.name != "__main__.py"]


def test_core_imports_no_connector_mapping_or_plugin():
    """Built-ins are loaded by name (hub.plugins.DEFAULT_PLUGINS), never imported by core."""
    bad = violations(
        "core-no-plugins", CORE, lambda n: under(n, "connectors", "mappings", "plugins")
    )
    assert not bad, bad


def test_sandbox_imports_nothing_of_the_hub():
    """The sandbox judges the clients; it shares no code with them."""
    files = modules(HUB / "sandbox")
    bad = violations(
        "sandbox-alone",
        files,
        lambda n: (
            under(n, "hub", "connectors", "mappings", "plugins") and not under(n, "hub.sandbox")
        ),
    )
    assert not bad, bad


def test_cli_holds_no_sqlite_and_no_sql():
    files = modules(HUB / "cli")
    bad = violations("cli-no-sqlite", files, lambda n: under(n, "sqlite3", "sqlite_utils"))
    sql = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    for path in files:
        if ("cli-no-sql", rel(path)) in KNOWN_EXCEPTIONS:
            continue
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if sql.search(text):
                bad.append(f"{rel(path)}:{number} holds SQL: read models go in hub/store/")
    assert not bad, bad


def test_storage_core_is_the_bottom_layer():
    """``hub.store`` itself (Store, migrations, maintenance) imports only errors, the clock and
    the text helpers; read models beside it may use the library, never a front end."""
    core = [HUB / "store" / "__init__.py", HUB / "store" / "migrations.py"]
    core += [HUB / "store" / "maintenance.py"]
    bad = violations(
        "store-bottom",
        core,
        lambda n: (
            under(n, "hub") and not under(n, "hub.store", "hub.errors", "hub.clock", "hub.text")
        ),
    )
    models = [p for p in modules(HUB / "store") if p not in core]
    bad += violations(
        "read-models", models, lambda n: under(n, "hub.cli", "hub.web", "hub.sandbox", "rich")
    )
    assert not bad, bad


def test_rich_only_in_the_cli():
    """The library returns results; only the CLI (and the sandbox's own server) draws."""
    bad = violations("rich-only-in-cli", LIBRARY, lambda n: under(n, "rich"))
    assert not bad, bad


def test_library_does_not_import_the_cli():
    bad = violations("no-cli", LIBRARY, lambda n: under(n, "hub.cli"))
    assert not bad, bad


@pytest.mark.parametrize("folder", ["connectors", "mappings"])
def test_connectors_and_mappings_stay_apart(folder):
    """A connector only fetches (no mapping, no plugin); a mapping only reads stored rows."""
    other = {"connectors": ("mappings", "plugins"), "mappings": ("connectors", "plugins")}
    files = modules(ROOT / folder)
    bad = violations(f"{folder}-apart", files, lambda n: under(n, *other[folder]))
    assert not bad, bad


def test_no_hand_written_module_over_600_lines_outside_known_data_tables():
    """ARCHITECTURE.md names the exceptions."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    long = []
    for base in ("hub", "connectors", "mappings", "plugins"):
        for path in modules(ROOT / base):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > 600 and f"`{rel(path)}`" not in text:
                long.append(f"{rel(path)} ({lines} lines)")
    assert not long, "split these modules (or name a data table in ARCHITECTURE.md): " + ", ".join(
        long
    )


def test_architecture_md_names_every_package():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    packages = [p.name for p in HUB.iterdir() if (p / "__init__.py").exists()]
    missing = [p for p in packages if f"hub/{p}/" not in text]
    assert not missing, f"ARCHITECTURE.md does not describe: {missing}"
