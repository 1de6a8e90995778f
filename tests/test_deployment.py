"""The deployment files (Dockerfile, compose.yaml, deploy/systemd/) agree with the code they start:
every setting they name exists, every command they run parses, the units pass systemd's own check.

No Docker engine runs on the CI machines, so the image is not built here; what can drift without
one (settings' names, commands, paths, the health check's port) is checked instead.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import _parser
from bot.config import ENV_PREFIX, load_settings

CHECKOUT = Path(__file__).resolve().parents[1]
DOCKERFILE = (CHECKOUT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = (CHECKOUT / "compose.yaml").read_text(encoding="utf-8")
UNITS = sorted((CHECKOUT / "deploy" / "systemd").iterdir())
INSTALLED = "/opt/removal-desk/venv/bin/removal-desk"


def _settings_named(text: str) -> dict[str, str]:
    """Every REMOVAL_DESK_<SECTION>_<KEY>=value the file sets."""
    return dict(re.findall(rf"({ENV_PREFIX}[A-Z_]+)[=:] *([^\s\\\"]+)", text))


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml", *(f"deploy/systemd/{u.name}" for u in UNITS)])
def test_every_setting_a_deployment_file_sets_exists(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    named = _settings_named((CHECKOUT / name).read_text(encoding="utf-8"))
    for variable, value in named.items():
        if variable != "REMOVAL_DESK_CONFIG":  # names a file, not a setting
            monkeypatch.setenv(variable, value)
    settings = load_settings(with_deployment_files=False)  # a name that is no setting is ignored: check
    for variable, value in named.items():
        if variable == "REMOVAL_DESK_CONFIG":
            continue
        section, _, key = variable.removeprefix(ENV_PREFIX).lower().partition("_")
        assert str(getattr(getattr(settings, section), key)) == value, variable


def test_the_image_keeps_its_state_on_volumes_and_runs_unprivileged() -> None:
    runtime = DOCKERFILE.rsplit("\nFROM ", 1)[1]  # the final stage
    assert runtime.startswith("python:${PYTHON}-slim")
    named = _settings_named(runtime)
    volumes = re.search(r"^VOLUME (\[.*\])$", runtime, re.MULTILINE)
    assert volumes
    mounted = json.loads(volumes.group(1))
    assert named["REMOVAL_DESK_DISCORD_INDEX"] in mounted
    assert str(Path(named["REMOVAL_DESK_TICKETS_DATABASE"]).parent) in mounted
    user = re.search(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert user
    assert user.group(1) not in {"root", "0"}
    assert "DISCORD_TOKEN=" not in runtime  # comes from the environment at run time, never the image


def test_the_health_check_asks_healthz_on_the_port_the_bot_serves() -> None:
    named = _settings_named(DOCKERFILE)
    check = re.search(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert check
    assert f"http://127.0.0.1:{named['REMOVAL_DESK_HEALTH_PORT']}/healthz" in check.group(1)
    assert f"EXPOSE {named['REMOVAL_DESK_HEALTH_PORT']}" in DOCKERFILE
    assert f':{named["REMOVAL_DESK_HEALTH_PORT"]}"' in COMPOSE


def test_the_image_copies_only_what_the_dockerignore_lets_through() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (CHECKOUT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.MULTILINE)
        for source in line.split()[:-1]
    }
    assert copied <= allowed
    assert {"bot", "cogs", "pyproject.toml", "requirements.txt"} <= copied


def _commands(unit: Path) -> list[list[str]]:
    """The removal-desk command lines a unit runs (ExecStart=, or inside a sh -c)."""
    found = []
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart=") and INSTALLED in line:
            words = shlex.split(line.removeprefix("ExecStart=").replace("%%", "%"))
            if words[0] == "/bin/sh":
                words = shlex.split(words[-1].removeprefix("exec "))
            found.append(words[1:])
    return found


def test_every_command_the_units_and_compose_run_is_one_the_command_line_knows() -> None:
    commands = [command for unit in UNITS for command in _commands(unit)]
    assert ["run"] in commands
    assert ["tickets", "purge"] in commands
    compose_commands = re.findall(r"removal-desk (db backup \S+)", COMPOSE) + re.findall(
        r"bot (doctor|index build .*)$", COMPOSE, re.MULTILINE
    )
    assert compose_commands
    for command in [*commands, *(shlex.split(c) for c in compose_commands)]:
        _parser().parse_args(command)  # exits (SystemExit) on an unknown command or option


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    installed = Path(sys.executable).parent / "removal-desk"
    for unit in UNITS:  # the installed path as the README installs it, here this venv's command
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, str(installed)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
