"""The layers (issue 16): the import core and the worker load no web framework; the web views load no worker.

Each check runs in a fresh interpreter, so a module another test imported first cannot hide an import.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted(f"webapp.importer.{path.stem}" for path in (ROOT / "webapp" / "importer").glob("*.py")
              if path.stem != "__init__")
WEB_FRAMEWORK = ("flask", "htmx_flask", "werkzeug", "jinja2")
VIEWS = ("webapp.views.wizard", "webapp.views.imports", "webapp.views.personas", "webapp.views.audiences", "webapp.cli_import")


def loaded_after_importing(modules) -> set[str]:
    """The top-level packages and webapp/worker modules a fresh interpreter holds after importing modules."""
    script = ("import importlib, json, sys\n"
              f"for name in {list(modules)!r}:\n"
              "    importlib.import_module(name)\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = json.loads(done.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in names} | {n for n in names if n.startswith(("webapp", "worker"))}


def test_the_core_has_every_module_listed():
    assert {"webapp.importer.engine", "webapp.importer.service", "webapp.importer.states",
            "webapp.importer.values"} <= set(CORE)


def test_importing_the_core_and_the_jobs_loads_no_web_framework_and_no_view():
    loaded = loaded_after_importing([*CORE, "worker.tasks", "worker.queue"])
    assert not loaded & set(WEB_FRAMEWORK), sorted(loaded & set(WEB_FRAMEWORK))
    assert not loaded & {*VIEWS, "webapp.views.auth", "webapp.render", "webapp.wrappers"}


def test_importing_the_views_loads_no_worker_module():
    loaded = loaded_after_importing(VIEWS)
    assert "flask" in loaded  # the views are what loads it
    assert not {name for name in loaded if name == "worker" or name.startswith("worker.")}
