"""The installed ``removal-desk`` command (pyproject's console script) runs the command line from
any folder, as ``python -m bot`` does from the project's."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_the_removal_desk_command_runs_from_another_folder(tmp_path: Path):
    command = Path(sys.executable).parent / "removal-desk"
    assert command.exists(), "install the project (make install, or pip install -e .)"

    result = subprocess.run(
        [str(command), "index", "info", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == (
        f"error: {tmp_path} is not an index (no manifest.json) nor a list of parts (parts.json)\n"
    )


def _run(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "removal-desk"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REMOVAL_DESK_")}
    return subprocess.run(
        [str(command), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**clean, **(env or {})},
    )


def test_the_command_says_its_version(tmp_path: Path):
    result = _run(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"removal-desk {importlib.metadata.version('removal-desk')}"


def test_settings_come_from_the_current_folder_then_the_environment_then_config(tmp_path: Path):
    """A setting out of range names its file's value: which file was read shows in the error."""
    here, elsewhere, named = tmp_path / "removal-desk.toml", tmp_path / "env.toml", tmp_path / "named.toml"
    here.write_text("[tickets]\nmax_note_chars = -1\n")
    elsewhere.write_text("[tickets]\nmax_note_chars = -2\n")
    named.write_text("[tickets]\nmax_note_chars = -3\n")

    assert "= -1 " in _run(tmp_path, "index", "info", str(tmp_path)).stderr
    assert (
        "= -2 "
        in _run(tmp_path, "index", "info", str(tmp_path), env={"REMOVAL_DESK_CONFIG": str(elsewhere)}).stderr
    )
    with_both = _run(
        tmp_path,
        "--config",
        str(named),
        "index",
        "info",
        str(tmp_path),
        env={"REMOVAL_DESK_CONFIG": str(elsewhere)},
    )
    assert "= -3 " in with_both.stderr
    missing = _run(
        tmp_path, "index", "info", str(tmp_path), env={"REMOVAL_DESK_CONFIG": str(tmp_path / "nope.toml")}
    )
    assert missing.returncode == 2
    assert missing.stderr == f"error: config file {tmp_path / 'nope.toml'} does not exist\n"


def test_a_wheel_install_builds_and_checks_from_a_data_folder(tmp_path: Path):
    """``pip install .`` (not editable): the defaults travel inside the package, so an index build run
    from a data folder far from the checkout works (it used to fail: "No module named bot", then the
    defaults were looked for beside the package)."""
    checkout = Path(__file__).resolve().parents[2]
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(checkout)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    data = tmp_path / "data"
    shutil.copytree(checkout / "samples" / "dataset", data / "pictures")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REMOVAL_DESK_")}
    env = {**clean, "PYTHONPATH": str(target)}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(target / "bin" / "removal-desk"), *argv],
            cwd=data,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import bot.config as c; print(c.__file__); print(c.DEFAULT_CONFIG_PATH)"],
        cwd=data,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    assert all(Path(path).is_relative_to(target) for path in where), where

    built = run("index", "build", "pictures", "--out", "index", "--workers", "1", "--quiet")
    assert built.returncode == 0, built.stderr
    checked = run("check", "--index", "index", "--json", "pictures/coffee.jpg")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout.splitlines()[0])["matches"], checked.stdout
