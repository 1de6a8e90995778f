"""Settings: embedded defaults, deployment files, an override file, the environment, validation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot import config
from bot.config import ConfigError, load_settings


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder standing in for a checkout's config/, and a copy of the real defaults."""
    folder = tmp_path / "config"
    folder.mkdir()
    (tmp_path / "package").mkdir()
    default = tmp_path / "package" / "default.toml"
    default.write_text(config.DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", default)
    monkeypatch.setattr(config.deployment_files, "__defaults__", (folder,))
    for name in ("DISCORD_TOKEN", "REMOVAL_DESK_DISCORD_TOKEN", "REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID"):
        monkeypatch.delenv(name, raising=False)
    return folder


def test_deployment_files_merge_in_name_order_then_the_override_file_then_the_environment(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_dir / "a.toml").write_text("[discord]\nreview_channel_id = 1\nlog_channel_id = 5\n")
    (config_dir / "b.toml").write_text("[discord]\nreview_channel_id = 2\n")
    override = tmp_path / "override.toml"
    override.write_text("[discord]\nlog_channel_id = 6\nguild_ids = [7, 8]\n")
    settings = load_settings(override)
    assert settings.discord.review_channel_id == 2
    assert settings.discord.log_channel_id == 6
    assert settings.discord.guild_ids == (7, 8)
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID", "3")
    assert load_settings(override).discord.review_channel_id == 3
    assert load_settings(with_deployment_files=False).discord.review_channel_id == 3
    monkeypatch.delenv("REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID")
    assert load_settings(with_deployment_files=False).discord.review_channel_id == 0


def test_discord_token_comes_from_the_usual_variable_and_the_prefixed_one_wins(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().discord.token == ""
    monkeypatch.setenv("DISCORD_TOKEN", "from-discord-token")
    assert load_settings().discord.token == "from-discord-token"
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_TOKEN", "from-prefixed")
    assert load_settings().discord.token == "from-prefixed"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[discord]\nreview_chanel_id = 1\n", "discord.review_chanel_id"),
        ("[discrod]\nreview_channel_id = 1\n", "[discrod]"),
        ("[discord\n", "cannot read"),
    ],
)
def test_a_typo_in_a_config_file_is_an_error_naming_it(config_dir: Path, text: str, named: str) -> None:
    (config_dir / "local.toml").write_text(text)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        load_settings()


def test_a_wrongly_typed_value_names_the_setting(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMOVAL_DESK_DISCORD_REVIEW_CHANNEL_ID", "general")
    with pytest.raises(ConfigError, match=r"discord\.review_channel_id"):
        load_settings()


def test_problems_name_every_setting_the_bot_cannot_run_without(config_dir: Path) -> None:
    problems = load_settings().discord.problems()
    assert any("discord.token" in problem and "DISCORD_TOKEN" in problem for problem in problems)
    assert any("discord.review_channel_id" in problem for problem in problems)
    assert any("discord.maintainer_role_id" in problem for problem in problems)
    (config_dir / "local.toml").write_text(
        '[discord]\ntoken = "t"\nreview_channel_id = 1\nmaintainer_role_id = 2\napi_base_url = "ftp://x"\n'
    )
    assert load_settings().discord.problems() == ["discord.api_base_url = 'ftp://x' is not an http(s) URL"]


def test_a_list_of_regions_set_where_the_default_is_empty_hashes_a_query(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings are hashable all the way down (the hashing caches by them), from a file or the
    environment, also for a list whose default is empty and so shows no item type."""
    from PIL import Image

    from bot.hashing import hash_query

    override = tmp_path / "override.toml"
    override.write_text("[hashing]\ncut_query_regions = [[0.0, 0.1, 0.11, 0.1]]\n")
    from_file = load_settings(override)
    monkeypatch.setenv("REMOVAL_DESK_HASHING_CUT_QUERY_REGIONS", "[[0.1, 0.0, 0.0, 0.11]]")
    from_environment = load_settings()
    picture = Image.radial_gradient("L").convert("RGB")
    for settings, margins in ((from_file, "0,0.1,0.11,0.1"), (from_environment, "0.1,0,0,0.11")):
        assert settings.hashing.cut_query_regions == (tuple(float(m) for m in margins.split(",")),)
        assert f"as-sent@{margins}" in hash_query(picture, settings.hashing).variants


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("REMOVAL_DESK_DOWNLOAD_CONCURRENCY", "0", "download.concurrency = 0 must be at least 1"),
        ("REMOVAL_DESK_DOWNLOAD_READ_TIMEOUT_S", "0", "download.read_timeout_s = 0.0 must be at least"),
        ("REMOVAL_DESK_DISCORD_CHECK_PER_SECONDS", "0", "discord.check_per_seconds = 0 must be at least 1"),
        ("REMOVAL_DESK_DISCORD_HASH_WORKERS", "0", "discord.hash_workers = 0 must be at least 1"),
        ("REMOVAL_DESK_MATCHING_PHASH_MAX_DISTANCE", "65", "between 0 and 64"),
        ("REMOVAL_DESK_HASHING_CORE_MARGIN", "0.5", "hashing.core_margin = 0.5 must be between 0 and 0.45"),
        ("REMOVAL_DESK_HEALTH_PORT", "65536", "health.port = 65536 must be between 0 and 65535"),
        ("REMOVAL_DESK_HEALTH_PORT", "-1", "health.port = -1 must be between 0 and 65535"),
        ("REMOVAL_DESK_HEALTH_PORT", "http", "health.port = 'http' is not a valid int"),
    ],
)
def test_a_setting_out_of_its_range_is_a_config_error_naming_it(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings()


def test_the_command_line_reports_a_setting_out_of_range_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("REMOVAL_DESK_INDEX_SHARD_SIZE", "0")
    assert main(["index", "info", "data/nowhere"]) == 2
    error = capsys.readouterr().err
    assert "index.shard_size = 0 must be at least 1" in error
    assert "Traceback" not in error


def _uncommented(example: str) -> str:
    """The example with every ``# key = value`` line (and an array's continuation lines) made live."""
    lines, in_array = [], False
    for line in example.splitlines():
        body = line[2:] if line.startswith("# ") else None
        if body is not None and (in_array or re.match(r"[a-z_]+ = ", body)):
            lines.append(body)
            in_array = (in_array or body.rstrip().endswith("[")) and body.strip() != "]"
        else:
            lines.append(line)
    return "\n".join(lines)


def test_the_example_config_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    """config/example.toml is the operator's template: each setting there, commented, with the value
    it would have anyway; a setting added to the defaults and not to the example fails here."""
    checkout = Path(__file__).resolve().parents[2]
    example = (checkout / "config" / "example.toml").read_text(encoding="utf-8")
    assert tomllib.loads(example) == {section: {} for section in tomllib.loads(example)}  # all commented
    live = tomllib.loads(_uncommented(example))
    defaults = tomllib.loads(config.DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    assert live == defaults
    written = tmp_path / "example.toml"
    written.write_text(_uncommented(example), encoding="utf-8")
    assert load_settings(written, with_deployment_files=False) == load_settings(with_deployment_files=False)


def test_the_example_in_a_config_folder_is_never_read_as_settings(config_dir: Path) -> None:
    (config_dir / "example.toml").write_text("[discord]\nreview_channel_id = 9\n")
    (config_dir / "local.toml").write_text("[discord]\nlog_channel_id = 4\n")
    assert config.deployment_files() == [config_dir / "local.toml"]
    assert load_settings().discord.review_channel_id == 0
