"""The installed ``removal-desk`` command (pyproject's console script) runs the command line from
any folder, as ``python -m bot`` does from the project's."""

from __future__ import annotations

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
