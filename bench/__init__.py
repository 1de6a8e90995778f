"""Benchmarks of removal-desk, each run from the repository's root as a module of this package
with the project installed (``make install``), e.g. ``python -m bench.precision``:

* ``accuracy``: recall and false matches on the dev sets, beside plain pHash; hashing time;
* ``precision``: how often unrelated real pictures match, estimated at 1e8 entries;
* ``false_matches``: false matches counted end to end through the matcher;
* ``build``, ``search``, ``tickets``, ``apply``: speed of the index build, the search, the
  ticket store and ``removals apply``;
* ``fuzz_decoding``: hostile input through the decoding path (bugs, refusals by reason, time, memory);
* ``whole_picture_exact``: the whole-picture hashes against python-threatexchange and imagehash,
  and the fast PDQ against pdqhash, on every dev-set picture.

``photo_corpus`` gathers the real photographs that ``precision`` and ``false_matches`` use, and
``verification_tail`` is how both estimate the verification's share below what they can count.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # where samples/ lies, and ../shared beside it
# The baseline most dataset tools ship (../shared/README.md): imagehash.phash of the whole
# picture, Hamming distance <= 6, nothing else.
BASELINE_PHASH_MAX_DISTANCE = 6
# The development sets, as ../shared/devset/make_devset.py and make_hardset.py build them.
DEVSET = Path("/tmp/devset")
HARDSET = Path("/tmp/hardset")
