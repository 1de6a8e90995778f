"""``removal-desk doctor`` without Discord (``--offline``): one test per kind of finding, run
through the command line as an operator runs it. The Discord side: tests/discord/test_doctor_checks.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import load_settings, setting_errors
from bot.index.build import build_index
from bot.index.parts import write_parts
from bot.tickets.migrations import LATEST_VERSION
from bot.tickets.store import TicketStore

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "dataset"
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gh7x2Q.s3cr3t-d0ct0r-t0k3n-v4lu3-n0t-t0-b3-sh0wn"
READY_DISCORD = {"guild_ids": [1], "review_channel_id": 2, "maintainer_role_id": 3}


@pytest.fixture(scope="module")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("dataset")
    for name in ("coffee.jpg", "chelsea.jpg"):
        shutil.copy(SAMPLES / name, source / name)
    out = tmp_path_factory.mktemp("index") / "index"
    build_index([source], out, load_settings(with_deployment_files=False), workers=1, show_progress=False)
    return out


@pytest.fixture
def index(built_index: Path, tmp_path: Path) -> Path:
    """A copy of the small index a test may damage."""
    return Path(shutil.copytree(built_index, tmp_path / "index"))


@pytest.fixture
def desk(tmp_path: Path, index: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A ready desk's settings (written by :func:`doctor`), a migrated database, the token set."""
    monkeypatch.chdir(tmp_path)  # no ./removal-desk.toml but the test's own
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    database = tmp_path / "data" / "tickets.sqlite3"

    async def migrated() -> None:
        store = await TicketStore.open(database, load_settings(with_deployment_files=False).tickets)
        await store.close()

    asyncio.run(migrated())
    return {"discord": {**READY_DISCORD, "index": str(index)}, "tickets": {"database": str(database)}}


def _toml(value: Any) -> str:
    return json.dumps(value)  # numbers, strings and lists of numbers read the same in TOML


def doctor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: dict[str, Any], *argv: str
) -> tuple[int, dict[str, Any], str]:
    """Write ``settings`` as the config, run ``doctor --offline`` twice (--json and text); return
    the exit code, the JSON document and the text."""
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    config = tmp_path / "doctor.toml"
    config.write_text("\n".join(lines) + "\n")
    code = main(["--config", str(config), "doctor", "--offline", "--json", *argv])
    document = json.loads(capsys.readouterr().out)
    text_code = main(["--config", str(config), "doctor", "--offline", *argv])
    text = capsys.readouterr().out
    assert text_code == code
    return code, document, text


def by_check(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["check"]: finding for finding in document["findings"]}


def problems(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in document["findings"] if f["status"] == "problem"}


def test_a_ready_desk_exits_0_and_the_text_carries_the_same_findings_as_the_json(tmp_path, capsys, desk):
    code, document, text = doctor(tmp_path, capsys, desk)

    assert code == 0
    assert document["ready"] is True
    assert problems(document) == {}
    assert {"config", "config.discord", "token", "index", "database", "discord"} <= set(by_check(document))
    assert by_check(document)["index"]["status"] == "ok"
    assert "2 entries; 1 of 1 shard(s) match their checksums" in by_check(document)["index"]["message"]
    assert by_check(document)["discord"]["status"] == "skipped"  # --offline: skipped on purpose
    untimed = re.sub(r"\(\d+\.\d s\)", "(… s)", text)  # two runs: the time the checksums took differs
    for finding in document["findings"]:
        assert re.sub(r"\(\d+\.\d s\)", "(… s)", f"{finding['check']}: {finding['message']}") in untimed
    assert text.strip().splitlines()[-1].startswith("ready")


def test_a_setting_of_the_wrong_type_is_named_and_the_rest_is_not_checked(tmp_path, capsys, desk):
    desk["discord"]["review_channel_id"] = "the review channel"

    code, document, text = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert document["ready"] is False
    config = by_check(document)["config"]
    assert config["status"] == "problem"
    assert "discord.review_channel_id" in config["message"]
    assert "doctor.toml" in config["fix"]
    assert {by_check(document)[name]["status"] for name in ("token", "index", "database")} == {"skipped"}
    assert "FAIL  config: " in text
    assert "fix: correct or remove that setting" in text


def test_every_wrong_setting_is_named_at_once(tmp_path, capsys, desk, monkeypatch):
    """Out of range, misspelt, of the wrong type, from the environment: one finding each, where
    ``run`` would stop at the first."""
    desk["discord"].update(hash_workers=0, reveiw_channel_id=5, review_channel_id="the review channel")
    monkeypatch.setenv("REMOVAL_DESK_TICKETS_RETENTION_DAYS", "-1")

    code, document, text = doctor(tmp_path, capsys, desk)

    assert code == 1
    refusals = [f["message"] for f in document["findings"] if f["check"] == "config"]
    assert len(refusals) == 4, refusals
    assert any("unknown setting discord.reveiw_channel_id" in refusal for refusal in refusals)
    assert any("discord.hash_workers = 0 must be at least 1" in refusal for refusal in refusals)
    assert any("discord.review_channel_id = 'the review channel'" in refusal for refusal in refusals)
    assert any("tickets.retention_days = -1 must be at least 0" in refusal for refusal in refusals)
    assert text.count("FAIL  config: ") == 4


def test_settings_that_load_have_no_refusals():
    assert setting_errors(None, with_deployment_files=False) == []


def test_a_config_file_named_but_missing_is_a_problem(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["--config", str(tmp_path / "nowhere.toml"), "doctor", "--offline", "--json"])
    document = json.loads(capsys.readouterr().out)

    assert code == 1
    assert "nowhere.toml does not exist" in problems(document)["config"]["message"]
    assert "--config" in problems(document)["config"]["fix"]


def test_each_missing_setting_is_named_with_how_to_set_it(tmp_path, capsys, desk):
    desk["discord"].update(review_channel_id=0, maintainer_role_id=0, guild_ids=[], index="")

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    found = problems(document)
    assert set(found) == {
        "config.discord.review_channel_id",
        "config.discord.maintainer_role_id",
        "config.discord.index",
    }
    for name in ("review_channel_id", "maintainer_role_id", "index"):
        assert f"set discord.{name} in {tmp_path / 'doctor.toml'}" in found[f"config.discord.{name}"]["fix"]
    assert by_check(document)["config.discord.guild_ids"]["status"] == "warning"
    assert by_check(document)["index"]["status"] == "skipped"


def test_a_privacy_channel_that_is_also_the_review_channel_is_a_problem(tmp_path, capsys, desk):
    desk["discord"]["privacy_channel_id"] = desk["discord"]["review_channel_id"]

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "also the review channel" in problems(document)["config.discord.privacy_channel_id"]["message"]


def test_a_missing_token_is_a_problem_and_the_token_is_never_shown(tmp_path, capsys, desk, monkeypatch):
    monkeypatch.delenv("DISCORD_TOKEN")
    code, missing, _ = doctor(tmp_path, capsys, desk)
    assert code == 1
    assert "DISCORD_TOKEN" in problems(missing)["token"]["fix"]

    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    _, from_env, text = doctor(tmp_path, capsys, desk)
    desk["discord"]["token"] = TOKEN  # in a file, where it should not be: a warning
    monkeypatch.delenv("DISCORD_TOKEN")
    code, from_file, file_text = doctor(tmp_path, capsys, desk)

    assert by_check(from_env)["token"]["status"] == "ok"
    assert by_check(from_file)["token"]["status"] == "warning"
    assert code == 0
    everything = text + file_text + json.dumps(from_env) + json.dumps(from_file)
    for part in TOKEN.split("."):  # not the token, nor any piece of it
        assert part[:8] not in everything


def test_a_missing_index_is_a_problem(tmp_path, capsys, desk):
    desk["discord"]["index"] = str(tmp_path / "no-index")

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "does not exist" in problems(document)["index"]["message"]
    assert "removal-desk index build" in problems(document)["index"]["fix"]


def _a_shard_file(index: Path) -> Path:
    return max((index / "shards").rglob("*.npy"), key=lambda path: path.stat().st_size)


def test_a_flipped_byte_in_a_shard_fails_the_checksums_but_not_quick(tmp_path, capsys, desk, index):
    damaged = _a_shard_file(index)
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))

    code, document, _ = doctor(tmp_path, capsys, desk)
    quick_code, quick, _ = doctor(tmp_path, capsys, desk, "--quick")

    assert code == 1
    assert damaged.name in problems(document)["index"]["message"]
    assert "checksum differs" in problems(document)["index"]["message"]
    assert "rebuild" in problems(document)["index"]["fix"]
    assert quick_code == 0  # --quick compares sizes only: the flipped byte is not seen
    assert "checksums not read" in by_check(quick)["index"]["message"]


def test_a_truncated_shard_file_fails_even_quick(tmp_path, capsys, desk, index):
    damaged = _a_shard_file(index)
    damaged.write_bytes(damaged.read_bytes()[:-8])

    code, document, _ = doctor(tmp_path, capsys, desk, "--quick")

    assert code == 1
    assert "bytes where the manifest says" in problems(document)["index"]["message"]


def test_an_index_hashed_with_other_settings_is_a_problem(tmp_path, capsys, desk):
    desk["hashing"] = {"entry_margin": 0.05}

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "entry_margin" in problems(document)["index.hashing"]["fix"]


def test_a_database_whose_folder_cannot_be_made_is_a_problem(tmp_path, capsys, desk):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    desk["tickets"]["database"] = str(blocker / "tickets.sqlite3")

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "cannot be written" in problems(document)["database"]["message"]
    assert "tickets.database" in problems(document)["database"]["fix"]


def test_a_database_path_that_is_a_folder_is_a_problem(tmp_path, capsys, desk):
    desk["tickets"]["database"] = str(tmp_path)

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "is a folder" in problems(document)["database"]["message"]


def test_a_database_not_there_yet_is_a_warning_and_doctor_does_not_create_it(tmp_path, capsys, desk):
    new = tmp_path / "fresh" / "tickets.sqlite3"
    desk["tickets"]["database"] = str(new)

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 0
    assert by_check(document)["database"]["status"] == "warning"
    assert not new.parent.exists()


def _database_at(path: Path, version: int) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")  # as the bot keeps it
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        db.execute(f"PRAGMA user_version = {version:d}")
    return path


def test_a_database_not_migrated_is_a_warning_and_doctor_leaves_it_as_it_is(tmp_path, capsys, desk):
    old = _database_at(tmp_path / "old.sqlite3", LATEST_VERSION - 1)
    before = hashlib.sha256(old.read_bytes()).hexdigest()
    files = sorted(tmp_path.iterdir())
    desk["tickets"]["database"] = str(old)

    code, document, _ = doctor(tmp_path, capsys, desk)

    schema = by_check(document)["database.schema"]
    assert schema["status"] == "warning"
    assert code == 0  # the bot migrates it at start
    assert f"schema version {LATEST_VERSION - 1}" in schema["message"]
    assert "db backup" in schema["fix"]
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before
    assert sorted(tmp_path.iterdir()) == sorted([*files, tmp_path / "doctor.toml"])  # no -wal, no -shm
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION - 1


def test_a_database_in_use_is_read_with_what_its_wal_holds(tmp_path, capsys, desk):
    """Beside a running bot the last writes sit in the -wal file: doctor reads them too."""
    busy = _database_at(tmp_path / "busy.sqlite3", LATEST_VERSION - 1)
    desk["tickets"]["database"] = str(busy)
    with contextlib.closing(sqlite3.connect(busy)) as running:
        running.execute(f"PRAGMA user_version = {LATEST_VERSION:d}")  # in the WAL, not checkpointed
        assert Path(f"{busy}-wal").stat().st_size > 0

        code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 0
    assert f"at schema version {LATEST_VERSION}" in by_check(document)["database"]["message"]


def test_a_database_from_a_newer_release_is_a_problem(tmp_path, capsys, desk):
    desk["tickets"]["database"] = str(_database_at(tmp_path / "new.sqlite3", LATEST_VERSION + 1))

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "newer than this release" in problems(document)["database.schema"]["message"]
    assert "upgrade removal-desk" in problems(document)["database.schema"]["fix"]


def test_a_file_that_is_not_a_database_is_a_problem(tmp_path, capsys, desk):
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database file at all" * 100)
    desk["tickets"]["database"] = str(garbage)

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 1
    assert "db restore" in problems(document)["database"]["fix"]


def test_a_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["doctor", "--no-such-option"])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_folder_of_parts_is_checked_part_by_part(tmp_path, capsys, desk, built_index):
    served = tmp_path / "served"
    for name in ("000", "001"):
        shutil.copytree(built_index, served / "parts" / name)
    write_parts(served, ["parts/000", "parts/001"])
    desk["discord"]["index"] = str(served)

    code, document, _ = doctor(tmp_path, capsys, desk)

    assert code == 0
    assert by_check(document)["index"]["message"].startswith(f"{served}: 4 entries in 2 part(s); ")
    damaged = _a_shard_file(served / "parts" / "001")
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, document, _ = doctor(tmp_path, capsys, desk)
    assert code == 1
    assert str(served / "parts" / "001") in problems(document)["index"]["message"]


def test_with_dask_set_the_workers_must_open_every_part(tmp_path, capsys, desk, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr("bot.doctor.DASK_CONNECT_SECONDS", 1.0)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nobody = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    desk["discord"]["dask"] = nobody
    code, document, _ = doctor(tmp_path, capsys, desk)
    assert code == 1
    assert nobody in problems(document)["index.dask"]["message"]

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        desk["discord"]["dask"] = cluster.scheduler_address
        code, document, _ = doctor(tmp_path, capsys, desk)
        assert code == 0
        assert by_check(document)["index.dask"]["message"].endswith(": 1 part(s) open on 1 worker(s)")
