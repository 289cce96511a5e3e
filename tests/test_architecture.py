"""The layers of ARCHITECTURE.md hold: no module imports one of a higher layer (imports inside
functions included), so reading runs never needs the training engine, the engine never reads
a parameters file, and the display layer (tables, figures) never needs the parameters or the
chapters."""
import ast
from pathlib import Path

import tsfmicro

PACKAGE = Path(tsfmicro.__file__).resolve().parent

# ARCHITECTURE.md, "Layers": the first matching prefix gives a module's layer.
LAYERS = [
    ("tsfmicro.cli", 5), ("tsfmicro._study_cli", 5), ("tsfmicro.study", 5), ("tsfmicro.__main__", 5),
    ("tsfmicro.engine._cli", 5), ("tsfmicro.data._cli", 5), ("tsfmicro.provenance_box", 5),
    ("tsfmicro.explore", 5),
    ("tsfmicro.params", 4), ("tsfmicro.sections", 4), ("tsfmicro.chapters", 4),
    ("tsfmicro.report", 3), ("tsfmicro.plots", 3), ("tsfmicro.gradcam", 3), ("tsfmicro.localisation", 3),
    ("tsfmicro.attention_maps", 3),
    ("tsfmicro.sensitivity", 3), ("tsfmicro.reported", 3),
    ("tsfmicro.engine", 2),
    ("tsfmicro.results", 1),
    ("tsfmicro.data", 0), ("tsfmicro.model", 0), ("tsfmicro.metrics", 0), ("tsfmicro._io", 0), ("tsfmicro", 0),
]


def layer(module: str) -> int:
    return next(level for prefix, level in LAYERS if module == prefix or module.startswith(prefix + "."))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str) -> set[str]:
    """Every tsfmicro module ``path`` imports (``from . import x`` resolved against ``name``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from tsfmicro import report`
    return {module for module in found if module.split(".")[0] == "tsfmicro" and _exists(module)}


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative / "__init__.py").exists()


def test_no_module_imports_a_higher_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for imported in imported_modules(path, name):
            if imported != "tsfmicro" and layer(imported) > layer(name):
                violations.append(f"{name} (layer {layer(name)}) imports {imported} (layer {layer(imported)})")
    assert not violations, "\n".join(violations)


def test_the_layer_check_reads_every_form_of_import():
    assert "tsfmicro._io" in imported_modules(PACKAGE / "results.py", "tsfmicro.results")  # from tsfmicro import _io
    # `from tsfmicro import report` inside a function
    assert "tsfmicro.report" in imported_modules(PACKAGE / "engine" / "_cli.py", "tsfmicro.engine._cli")
    # relative imports of a package's __init__
    assert "tsfmicro.engine.execute" in imported_modules(PACKAGE / "engine" / "__init__.py", "tsfmicro.engine")
    assert layer("tsfmicro.engine.plan") == 2 and layer("tsfmicro.report") == 3 and layer("tsfmicro.data.cache") == 0
    # a chapter composes its section (parameters) and its tables (display): above both
    assert layer("tsfmicro.chapters.composite") == layer("tsfmicro.params") > layer("tsfmicro.report")
    assert "tsfmicro.report" in imported_modules(PACKAGE / "chapters" / "composite.py", "tsfmicro.chapters.composite")


# Display modules (layer 3) draw tables and figures from finished runs; running models is the
# engine's (tsfmicro.engine.evaluate runs fold models on other inputs). The one exception left:
# Grad-CAM turns crops into the model's inputs with the engine's transform.
DISPLAY_MAY_IMPORT_FROM_ENGINE = {"tsfmicro.gradcam": {"tsfmicro.engine.augment"}}


def test_display_modules_run_no_models():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if layer(name) != 3:
            continue
        engine = {m for m in imported_modules(path, name) if m == "tsfmicro.engine" or m.startswith("tsfmicro.engine.")}
        extra = engine - DISPLAY_MAY_IMPORT_FROM_ENGINE.get(name, set())
        if extra:
            found.append(f"{name} imports {', '.join(sorted(extra))}")
    assert not found, "\n".join(found)
    assert "tsfmicro.engine.augment" in imported_modules(PACKAGE / "gradcam.py", "tsfmicro.gradcam")  # the check sees it
