"""Fixtures the removal-list tests share: a real ticket store, and a small real index of sample photos.

The index holds four entries of three photos: ``coffee.jpg`` twice (the same picture found at two
URLs, as img2dataset sidecars describe them), ``astronaut.jpg`` and ``chelsea.jpg`` without any
sidecar (so their URL is unknown and their key is the file name).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.index.build import build_index
from bot.index.search import HashIndex

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
DATASET = SAMPLES / "dataset"
QUERIES = SAMPLES / "queries"

COFFEE_A = ("000000001", "https://example.org/a/coffee.jpg")
COFFEE_B = ("000000002", "https://mirror.example.net/b/coffee.jpg")
ASTRONAUT_KEY = "plain/astronaut.jpg"
CHELSEA_KEY = "plain/chelsea.jpg"


@pytest.fixture(scope="session")
def photo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four entries: coffee at two URLs (sidecar keys), astronaut and chelsea without sidecars."""
    root = tmp_path_factory.mktemp("removals-index")
    source = root / "source"
    for folder, (key, url) in (("a", COFFEE_A), ("b", COFFEE_B)):
        (source / folder).mkdir(parents=True)
        shutil.copy(DATASET / "coffee.jpg", source / folder / "coffee.jpg")
        (source / folder / "coffee.json").write_text(json.dumps({"key": key, "url": url}))
    (source / "plain").mkdir()
    for name in ("astronaut.jpg", "chelsea.jpg"):
        shutil.copy(DATASET / name, source / "plain" / name)
    out = root / "index"
    report = build_index([source], out, load_settings(), workers=1, show_progress=False)
    assert report.entries == 4
    return out


@pytest.fixture
def index(photo_index: Path) -> HashIndex:
    return HashIndex(photo_index)
