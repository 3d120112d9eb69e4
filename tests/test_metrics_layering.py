"""metrics imports only disbench.errors, disbench.paths, disbench.atomic and itself."""
import ast
from pathlib import Path

ALLOWED = ("disbench.errors", "disbench.paths", "disbench.atomic", "disbench.metrics")
METRICS = Path(__file__).resolve().parents[1] / "metrics"


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "disbench":
                yield from (f"disbench.{a.name}" for a in node.names)
            else:
                yield node.module


def test_metrics_imports_only_leaf_utilities_and_itself():
    files = sorted(METRICS.glob("*.py"))
    assert len(files) > 10, METRICS
    bad = [(f.name, m) for f in files for m in _imports(f)
           if m.startswith("disbench") and not m.startswith(ALLOWED)]
    assert bad == []
