"""No function of the source tree is over 60 lines (the project's style bar; issue 12 item 9).

A function counts from its ``def`` line to its last line, docstring and comments included. A
data table is exempt: a function whose body (after its docstring) is one ``return`` of a
literal list, tuple, set or dict.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("bench", "datasets", "metrics", "baselines")
MAX_LINES = 60


def _is_data_table(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return len(body) == 1 and isinstance(body[0], ast.Return) \
        and isinstance(body[0].value, (ast.List, ast.Tuple, ast.Set, ast.Dict))


def long_functions(source: str, name: str = "<source>") -> list[str]:
    """``"name:line function (n lines)"`` for each function of ``source`` over the bound."""
    out = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_LINES and not _is_data_table(node):
                out.append(f"{name}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_over_60_lines():
    files = [p for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 50  # the walk found the source tree
    found = [hit for p in files
             for hit in long_functions(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "split these into helpers: " + "; ".join(found)


def test_the_check_catches_a_long_function_but_not_a_data_table():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))
    long_fn = f"def f():\n{body}"  # MAX_LINES lines: allowed
    assert long_functions(long_fn) == []
    assert long_functions(long_fn + "    return x0\n") == ["<source>:1 f (61 lines)"]
    rows = "".join(f"        ({i}, {i + 1}),\n" for i in range(MAX_LINES + 5))
    table = f'def t():\n    """A table."""\n    return [\n{rows}    ]\n'
    assert long_functions(table) == []
