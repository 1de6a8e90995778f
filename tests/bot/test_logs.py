"""One logging set-up (bot.logs): plain or JSON lines, levels from the settings, discord.py's payload
logging held back, secrets scrubbed; and the command line using it."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.logs import REDACTED, configure_logging

CHECKOUT = Path(__file__).resolve().parents[2]


# tests/conftest.py puts the root logger and discord.py's back after each test.


def test_plain_lines_carry_time_level_logger_and_message() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    logging.getLogger("bot.example").info("handled %d message(s)", 3)
    logging.getLogger("bot.example").debug("not shown at INFO")
    [line] = out.getvalue().splitlines()
    assert line.endswith("INFO    bot.example: handled 3 message(s)")
    assert line[:4].isdigit()  # starts with the date


def test_json_lines_parse_and_carry_the_traceback() -> None:
    out = io.StringIO()
    configure_logging("WARNING", json_lines=True, stream=out)
    log = logging.getLogger("cogs.example")
    log.info("below the level")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("ticket %s could not be relayed", "K7M2QX")
    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "cogs.example"
    assert entry["message"] == "ticket K7M2QX could not be relayed"
    assert "RuntimeError: boom" in entry["exception"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_secret_never_reaches_the_log_not_even_through_a_traceback(json_lines: bool) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.secret-part-of-the-token"
    out = io.StringIO()
    configure_logging("INFO", json_lines=json_lines, secrets=(token, ""), stream=out)
    log = logging.getLogger("bot.example")
    log.warning("logging in with %s", token)
    try:
        raise ValueError(f"bad header Authorization: Bot {token}")
    except ValueError:
        log.exception("login failed")
    text = out.getvalue()
    assert token not in text
    assert text.count(REDACTED) == 2
    assert "bad header Authorization: Bot" in text


def test_discord_payloads_stay_out_even_at_debug() -> None:
    """discord.py logs request bodies and gateway payloads (what people wrote, their names) at DEBUG."""
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    logging.getLogger("discord.http").debug("POST /channels/1/messages with {'content': 'my name is'}")
    logging.getLogger("discord.gateway").info("Shard ID None has connected to Gateway")
    logging.getLogger("bot.example").debug("our own debug line")
    text = out.getvalue()
    assert "my name is" not in text
    assert "has connected to Gateway" in text
    assert "our own debug line" in text


def test_configuring_again_replaces_the_handler_rather_than_doubling_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    logging.getLogger("bot.example").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_a_wrong_level_or_format_is_a_config_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMOVAL_DESK_LOGGING_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match=r"logging\.level = 'LOUD'"):
        load_settings(with_deployment_files=False)
    monkeypatch.setenv("REMOVAL_DESK_LOGGING_LEVEL", "debug")
    monkeypatch.setenv("REMOVAL_DESK_LOGGING_FORMAT", "xml")
    with pytest.raises(ConfigError, match=r"logging\.format = 'xml'"):
        load_settings(with_deployment_files=False)


def _index_without_checksums(tmp_path: Path) -> Path:
    """A one-picture index whose manifest predates checksums: opening it logs a warning."""
    from bot.index.build import build_index

    source = tmp_path / "dataset"
    source.mkdir()
    (source / "coffee.jpg").write_bytes((CHECKOUT / "samples" / "dataset" / "coffee.jpg").read_bytes())
    index = tmp_path / "index"
    build_index([source], index, load_settings(with_deployment_files=False), workers=1, show_progress=False)
    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["files"]
    (index / "manifest.json").write_text(json.dumps(manifest))
    return index


def test_the_command_line_logs_json_with_the_flag_and_respects_the_level(tmp_path: Path) -> None:
    index = _index_without_checksums(tmp_path)
    command = [sys.executable, "-m", "bot"]

    def verify(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *options, "index", "verify", str(index)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
        )

    plain = verify()
    assert plain.returncode == 0, plain.stderr
    assert "WARNING bot.index.search: 1 of 1 shard(s)" in plain.stderr

    as_json = verify("--log-json")
    [entry] = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "bot.index.search"

    quiet = verify(env={"REMOVAL_DESK_LOGGING_LEVEL": "ERROR"})
    assert quiet.returncode == 0
    assert quiet.stderr == ""
