"""A newcomer's first run: `make run`'s port and host, and a README whose links stay in the repo."""

import os
import re
import subprocess

from app.settings import ROOT


def _make_run(*args: str, env: dict[str, str] | None = None) -> str:
    """The command `make run` would run (make -n prints it and runs nothing)."""
    done = subprocess.run(
        ["make", "-n", "run", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_takes_a_port_and_host_from_its_command_line() -> None:
    command = _make_run("PORT=8001", "HOST=0.0.0.0")

    assert "--port 8001" in command and "--host 0.0.0.0" in command


def test_make_run_leaves_the_environment_to_playground_serve() -> None:
    # `playground serve` reads PLAYGROUND_PORT itself; a shell's own PORT or HOST must not leak in.
    command = _make_run(env={"PLAYGROUND_PORT": "8001", "PORT": "9", "HOST": "example.org"})

    assert "playground serve" in command
    assert "--port" not in command and "--host" not in command


def test_the_readme_and_docs_link_only_to_files_of_the_repo() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{document.name} → {target}"
