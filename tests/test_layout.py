"""`models/` is pure TensorFlow: no web layer, usable from a notebook."""

import ast
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "models"
WEB = {"app", "fastapi", "starlette", "uvicorn", "jinja2", "websockets"}


def test_models_never_import_the_web_layer() -> None:
    for path in MODELS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in WEB, f"{path.name} imports {name}"
