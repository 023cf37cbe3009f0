"""`playground serve`: its port and host come from PLAYGROUND_* unless a flag says otherwise, and a
setting out of range is named; `playground bench --only` refuses a section it does not have."""

import os
import socket
import subprocess
import sys

import pytest

from app import cli
from app.settings import ROOT, Settings

# TensorFlow alone takes ~9 s to start here; a busy port must be reported before it is imported.
REPORT_TF_IMPORTED = (
    "import sys\n"
    "from app.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "finally:\n"
    "    print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
)


def parse(*argv: str) -> Settings:
    return cli.serve_settings(cli.build_parser().parse_args(["serve", *argv]))


def test_the_environment_sets_port_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_PORT", "8123")
    monkeypatch.setenv("PLAYGROUND_HOST", "0.0.0.0")

    settings = parse()

    assert (settings.host, settings.port) == ("0.0.0.0", 8123)


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_PORT", "8123")

    settings = parse("--port", "8001", "--host", "localhost")

    assert (settings.host, settings.port) == ("localhost", 8001)


def test_defaults_without_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYGROUND_PORT", raising=False)
    monkeypatch.delenv("PLAYGROUND_HOST", raising=False)

    settings = parse()

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_a_busy_port_fails_fast_and_says_so(how: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PLAYGROUND_PORT": str(port)} if how == "env" else dict(os.environ)
        flags = ["--port", str(port)] if how == "flag" else []
        done = subprocess.run(
            [sys.executable, "-c", REPORT_TF_IMPORTED, "serve", *flags],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "make run PORT=" in done.stderr
    assert "tensorflow imported: False" in done.stdout


def test_a_setting_out_of_range_exits_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_XLA_BUILDS", "-1")
    monkeypatch.setenv("PLAYGROUND_TF_THREADS", "many")
    with pytest.raises(SystemExit) as exited:
        parse()
    message = str(exited.value.code)
    assert message.startswith("playground: invalid settings:")
    rule = "Input should be greater than or equal to 0"
    assert f"PLAYGROUND_MAX_XLA_BUILDS: {rule}. Received: '-1'" in message
    assert "PLAYGROUND_TF_THREADS: Input should be a valid integer" in message


def test_bench_only_names_what_it_can_run_before_starting_a_server() -> None:
    with pytest.raises(
        SystemExit, match=r"--only must name benches of \[.*'dogs', 'images'.*Received: \['dog'\]"
    ):
        cli.main(["bench", "--only", "dog"])


def test_the_server_configures_tensorflows_threads_before_it_starts() -> None:
    """In a fresh process, as `serve` does: XLA's calls get the training threads' count, its
    products stay single-threaded, and idle threads sleep (the setting has no public API: this
    fails if TensorFlow stops reading it)."""
    script = (
        "import os\n"
        "from app.cli import _configure_tensorflow\n"
        "_configure_tensorflow(3)\n"
        "import tensorflow as tf\n"
        "from tensorflow.python.eager import context\n"
        "tf.constant(1.0) + 1.0  # the context starts with the settings\n"
        "config = context.context().config\n"
        "print(config.intra_op_parallelism_threads, config.inter_op_parallelism_threads,\n"
        "      config.experimental.disable_thread_spinning, os.environ['XLA_FLAGS'])\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_use_thunk_runtime=true"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [
        "3",
        "3",
        "True",
        "--xla_cpu_use_thunk_runtime=true",  # the operator's flags are kept
        "--xla_cpu_multi_thread_eigen=false",
    ]
