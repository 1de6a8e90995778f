"""bot/signals: every kind behind one interface, and a kind added in one module and the registry
flows through hashing, the index, the search, a ticket's query and hash Parquet sources."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bot.config import MatchingSettings, load_settings
from bot.decoding import decode_picture
from bot.hashing import EntryHashes, QueryHashes, hash_entry, hash_query
from bot.index.build import hashing_parameters
from bot.index.search import HashIndex
from bot.index.sources import iter_hash_parquet
from bot.index.storage import DatasetEntry, Manifest, ShardReader, ShardWriter
from bot.matching import MatchDistance
from bot.signals import (
    PDQ,
    SEARCHED,
    SIGNAL_KINDS,
    PHash,
    SignalKind,
    checked_kinds,
    pack_bits,
    ranked_kinds,
)
from bot.tickets.models import StoredQuery

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "dataset" / "astronaut.jpg"
RULE = MatchingSettings(phash_max_distance=8, pdq_max_distance=80, pdq_min_quality=50)


def random_value(kind: type[SignalKind], rng: np.random.Generator) -> object:
    return kind.entry_value(rng.integers(0, 2**63, kind.words(), dtype=np.uint64) << np.uint64(1))


def flipped(kind: type[SignalKind], value: object, bits: list[int]) -> object:
    """``value`` with the given bit positions (0 = the first, most significant) flipped."""
    words = np.array(np.ravel(value), dtype=np.uint64)
    for bit in bits:
        words[bit // 64] ^= np.uint64(1) << np.uint64(63 - bit % 64)
    return kind.entry_value(words)


@pytest.mark.parametrize("kind", list(SIGNAL_KINDS.values()), ids=list(SIGNAL_KINDS))
def test_every_kind_round_trips_its_text_and_measures_bits(kind):
    rng = np.random.default_rng(17)
    value = random_value(kind, rng)

    text = kind.to_hex(value)

    assert len(text) == kind.bits // 4
    assert kind.to_hex(kind.parse(text)) == text
    assert kind.to_hex(kind.parse(bytes.fromhex(text))) == text
    other = flipped(kind, value, [0, 5, kind.bits - 1])
    assert int(kind.distances(value, other)) == 3
    column = kind.column([value, other])
    assert column.shape == (2, *kind.value_shape())
    assert column.dtype == np.uint64
    assert kind.distances(column, value).tolist() == [0, 3]
    assert kind.to_hex(kind.entry_value(column[1])) == kind.to_hex(other)


def test_words_over_and_under_2_63_keep_every_bit_in_text():
    words = [2**64 - 1, 1, 2**63, 5]
    expected = "ffffffffffffffff000000000000000180000000000000000000000000000005"

    assert PDQ.to_hex(words) == expected
    assert PDQ.to_hex(np.array(words, dtype=np.uint64)) == expected
    assert PHash.to_hex(2**63 + 1) == "8000000000000001"
    query = QueryHashes(
        phash=np.array([2**63 + 1], dtype=np.uint64),
        pdq=np.array([words], dtype=np.uint64),
        variants=("as-sent",),
        quality=90,
    )
    assert StoredQuery.from_hashes(query) == StoredQuery(
        variants=("as-sent",), phash=("8000000000000001",), pdq=(expected,), quality=90
    )


@pytest.mark.parametrize("kind", list(SIGNAL_KINDS.values()), ids=list(SIGNAL_KINDS))
def test_every_kind_refuses_text_of_the_wrong_size(kind):
    with pytest.raises((TypeError, ValueError)):
        kind.parse("1" + "0" * (kind.bits // 4))  # one bit more than it holds
    with pytest.raises((TypeError, ValueError)):
        kind.parse(b"\x01" * (kind.bits // 8 - 1))


@pytest.mark.parametrize("kind", list(SIGNAL_KINDS.values()), ids=list(SIGNAL_KINDS))
def test_every_kind_has_its_radii_in_the_configuration(kind):
    rule = load_settings(with_deployment_files=False).matching

    # a candidate may be lined up through the variants within the rule and those a little further
    assert 0 < kind.max_distance(rule) <= kind.near_distance(rule) <= kind.bits
    assert kind.max_distance(rule) == getattr(rule, f"{kind.name}_max_distance")


def test_the_registry_ranks_the_finest_kind_first_and_searches_a_64_bit_one():
    assert list(SIGNAL_KINDS) == ["phash", "pdq"]  # the order of a ticket's JSON and the manifest
    assert ranked_kinds() == (PDQ, PHash)
    assert SEARCHED is PHash
    assert SEARCHED.bits == 64
    assert checked_kinds() == (PDQ,)
    assert MatchDistance(pdq=3, phash=9) < MatchDistance(pdq=4, phash=0)
    assert MatchDistance.ranked((3, 9)) == MatchDistance(pdq=3, phash=9)


def test_a_carrier_needs_every_kind():
    with pytest.raises(TypeError, match="missing: pdq"):
        EntryHashes(phash=1, quality=100)
    with pytest.raises(TypeError, match="ahash"):
        EntryHashes(phash=1, pdq=np.zeros(4, np.uint64), ahash=2, quality=100)


# --- a kind of one's own -------------------------------------------------------------------------


class Toy(SignalKind):
    """A 128-bit average hash: each cell of a 16x8 grey thumbnail above the mean or not."""

    name: ClassVar[str] = "toy"
    bits: ClassVar[int] = 128
    grey: ClassVar[bool] = True
    radius: ClassVar[int] = 10

    @classmethod
    def compute(cls, image: Image.Image) -> np.ndarray:
        cells = np.asarray(image.convert("L").resize((16, 8), Image.Resampling.BOX), dtype=np.float64)
        return pack_bits(cells > cells.mean())

    @classmethod
    def max_distance(cls, rule: MatchingSettings) -> int:  # noqa: ARG003 - no setting of its own
        return cls.radius

    @classmethod
    def near_distance(cls, rule: MatchingSettings) -> int:  # noqa: ARG003
        return cls.radius


@pytest.fixture
def toy(monkeypatch) -> type[Toy]:
    """Toy registered: the one line a new kind adds to bot.signals.registry."""
    monkeypatch.setitem(SIGNAL_KINDS, Toy.name, Toy)
    return Toy


def test_a_registered_kind_is_computed_for_entries_and_queries(toy):
    settings = load_settings(with_deployment_files=False)
    image = decode_picture(SAMPLE.read_bytes(), settings.decoding).image

    entry = hash_entry(image, settings.hashing)
    query = hash_query(image, settings.hashing)

    assert entry.toy.shape == (2,)
    assert all(part.hashes.toy.shape == (2,) for part in entry.parts)
    assert query.toy.shape == (len(query.variants), 2)
    # the query's first variant is the whole picture as sent: the toy hash of that picture
    assert query.toy[0].tolist() == toy.compute(image).tolist()
    assert hashing_parameters(settings)["kinds"] == {"phash": 64, "pdq": 256, "toy": 128}
    stored = StoredQuery.from_hashes(query)
    assert stored.toy[0] == toy.to_hex(query.toy[0])
    assert '"toy":[' in stored.to_json()
    assert StoredQuery.from_json(stored.to_json()) == stored


def test_a_registered_kind_is_stored_searched_and_ranked(toy, tmp_path):
    rng = np.random.default_rng(5)
    base = {kind.name: random_value(kind, rng) for kind in SIGNAL_KINDS.values()}
    near = {**base, "toy": flipped(toy, base["toy"], list(range(0, 70, 7)))}  # 10 bits: within
    far = {**base, "toy": flipped(toy, base["toy"], list(range(0, 110, 10)))}  # 11 bits: outside
    writer = ShardWriter(tmp_path, "00000")
    for key, signals in (("near", near), ("far", far)):
        writer.add(DatasetEntry(key=key), EntryHashes(signals=signals, quality=100))
    writer.commit()
    Manifest(hashing={"synthetic": True}, shards=["00000"]).write(tmp_path)
    query = QueryHashes(
        signals={kind.name: kind.column([base[kind.name]]) for kind in SIGNAL_KINDS.values()},
        variants=("as-sent",),
        quality=100,
    )

    assert (tmp_path / "shards" / "00000" / "toy.npy").exists()
    assert ShardReader(tmp_path / "shards" / "00000").toy.shape == (2, 2)
    found = HashIndex(tmp_path).find(query, RULE, views=None)
    assert [item.entry.key for item in found] == ["near"]
    assert found[0].match.distance == MatchDistance(phash=0, pdq=0, toy=10)
    assert ranked_kinds() == (PDQ, toy, PHash)


def test_a_hash_file_gives_a_registered_kind_its_own_column(toy, tmp_path):
    rng = np.random.default_rng(8)
    values = [{kind.name: random_value(kind, rng) for kind in SIGNAL_KINDS.values()} for _ in range(2)]
    path = tmp_path / "hashes.parquet"
    columns = {name: [kind.to_hex(row[name]) for row in values] for name, kind in SIGNAL_KINDS.items()}
    pq.write_table(pa.table({"key": ["a", "b"], **columns}), path)

    items = list(iter_hash_parquet(path))

    assert [toy.to_hex(item.hashes.toy) for item in items if item.hashes] == columns["toy"]
    pq.write_table(pa.table({"key": ["a"], "phash": [columns["phash"][0]], "pdq": [columns["pdq"][0]]}), path)
    with pytest.raises(ValueError, match="lacks the column\\(s\\) toy "):
        list(iter_hash_parquet(path))
