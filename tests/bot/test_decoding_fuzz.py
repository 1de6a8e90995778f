"""Hostile input, generated: every input decodes or is refused with a sentence, within time and memory.

The inputs are those of ``bench/fuzz_decoding.py`` (random bytes, random bytes behind a real magic,
real pictures of every accepted format truncated, flipped, zeroed, cut, spliced, given the wrong
magic or a header declaring huge or zero dimensions), drawn by hypothesis with a fixed seed
(``derandomize``) and a bounded number of examples, so CI runs the same few seconds every time.
The longer run is ``python -m bench.fuzz_decoding --seconds 600`` (docs/measurements.md).

The property tests run with a 4 MP pixel cap, so that inputs declaring a picture just under the
cap (which are decoded, by design) stay cheap; the memory bound is measured in a fresh process by
the bench itself, where no earlier test has raised the peak.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bench.fuzz_decoding import MAGIC, MUTATIONS, _with_dimensions, seed_pictures, try_input
from bot.config import Settings, load_settings
from bot.decoding import ImageRejectedError, decode_picture

REPO = Path(__file__).resolve().parents[2]
CAP = 4_000_000  # pixels, for the in-process tests (see the module docstring)
SECONDS_PER_INPUT = 5.0  # the bench's --limit-seconds; decoding an input takes milliseconds
EXAMPLES = hypothesis_settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,  # timed below, against our own limit, not hypothesis's 200 ms
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def capped(settings: Settings, max_pixels: int = CAP) -> Settings:
    return dataclasses.replace(
        settings, decoding=dataclasses.replace(settings.decoding, max_pixels=max_pixels)
    )


def mutated(seed_name: str, kinds: list[str], seed: int) -> bytes:
    data, rng = seed_pictures()[seed_name], random.Random(seed)
    for kind in kinds:
        if data:
            data = MUTATIONS[kind](data, rng)
    return data


CAPPED = capped(load_settings(with_deployment_files=False))

mutated_pictures = st.builds(
    mutated,
    st.sampled_from(sorted(seed_pictures())),
    st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3),
    st.integers(0, 2**32),
)
hostile = st.one_of(
    st.binary(max_size=4096),
    st.builds(
        lambda magic, tail: magic + tail, st.sampled_from(list(MAGIC.values())), st.binary(max_size=4096)
    ),
    mutated_pictures,
)


def assert_answered(data: bytes, settings: Settings, *, decode_only: bool) -> None:
    outcome = try_input(data, settings, decode_only=decode_only)
    assert outcome.result != "escaped", f"{len(data)} bytes escaped as {outcome.error!r}"
    assert outcome.seconds < SECONDS_PER_INPUT, f"{len(data)} bytes took {outcome.seconds:.2f} s"


@EXAMPLES
@given(data=hostile)
def test_every_input_is_decoded_or_refused_with_a_sentence(data: bytes) -> None:
    assert_answered(data, CAPPED, decode_only=True)


@hypothesis_settings(EXAMPLES, max_examples=20)
@given(data=mutated_pictures)
def test_the_desks_hashing_entry_answers_every_input(data: bytes) -> None:
    """hash_submitted_picture, what the desk's hashing worker runs (decode, then ~670 variants)."""
    assert_answered(data, CAPPED, decode_only=False)


@pytest.mark.parametrize("name", sorted(seed_pictures()))
def test_declared_dimensions_over_the_cap_are_refused_before_decoding(name: str, settings: Settings) -> None:
    for width, height in [(2001, 2001), (65535, 65535), (2**31 - 1, 2**31 - 1)]:
        data = _with_dimensions(seed_pictures()[name], width, height)
        outcome = try_input(data, capped(settings), decode_only=True)
        assert outcome.result in ("too_many_pixels", "not_an_image", "corrupt"), (name, width, outcome)
        assert outcome.seconds < 0.5


@pytest.mark.parametrize("name", ["gif_animated", "webp_animated"])
def test_a_truncated_animation_is_refused_as_damaged(name: str, settings: Settings) -> None:
    """Counting the frames of a cut-off GIF raised IndexError, outside the decoder's guard (fuzz-found)."""
    data = seed_pictures()[name]
    reasons = set()
    for length in range(len(data) // 8, len(data), max(1, len(data) // 40)):
        try:
            decode_picture(data[:length], settings.decoding)
        except ImageRejectedError as refused:
            reasons.add(refused.reason)
    assert reasons <= {"corrupt", "not_an_image"}, reasons


def test_a_short_bench_run_finds_no_bug_and_stays_within_memory() -> None:
    """The bench in a fresh process (so its peak memory is its own), a few seconds, fixed seed."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fuzz_decoding",
            *("--seconds", "4", "--decode-only"),
            *("--max-pixels", str(CAP), "--json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["bugs"] == [], figures["bugs"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert figures["tried"] > 100
    # Decoded, a picture at the cap costs ~20 bytes a pixel (animated WebP: libwebp's canvas, Pillow's
    # copy, the RGBA flattening); anything far past that is memory the cap does not bound.
    assert figures["peak_rss_mib"] - figures["peak_rss_before_mib"] < 40 * CAP / 2**20 + 64
