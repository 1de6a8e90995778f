"""The installed ``removal-desk`` command (pyproject's console script) runs the command line from
any folder, as ``python -m bot`` does from the project's."""

from __future__ import annotations

import importlib.metadata
import os
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
    assert result.stderr == f"error: {tmp_path} is not an index (no manifest.json)\n"


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
