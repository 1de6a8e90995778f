"""Precision at scale: how often does the matcher match two UNRELATED real pictures?

Usage: python -m bench.precision [--pictures N] [--cache DIR] [--devset DIR] [--workers N] [--json]

A threshold with no false match among a thousand pictures can make thousands among 1e8 entries:
the expected number of false matches of one query is N_entries * p, where p is the probability
that one unrelated (query, entry) pair matches. This bench measures p on every ordered pair of
~5,000 distinct real pictures (bench/photo_corpus.py: photographs from Debian packages and
non-overlapping tiles of large ones), under the CURRENT config and query variants: each picture
goes through decode_picture, then hash_entry (as a dataset entry) and hash_query (as a query).
Pictures whose PDQ quality is below pdq_min_quality are left out: the matcher ignores them.
Hashes are cached per picture under --cache, keyed by the hashing settings and code.

Pairs are split by kind, because p depends on what the pictures show: everyday photographs (the
headline: what people ask to have removed); telescope pictures (a bright blob on black: their
hashes collide far more often); objects cut out on white; tiles of one photograph.

Printed: pair counts; distance histograms of unrelated pairs per hash kind, per (query variant,
entry) and as the minimum over a query's variants; false matches under the configured rule, each
hash alone and the baseline (plain whole-picture pHash <= 6, no variants); estimated expected
false matches per query at 1e6, 1e8 and 5.85e9 entries on a threshold grid, beside the dev set's
recall at each point; the thresholds that reach the goal with the most recall; the verification
stage's share (bench/precision/verification.py).

How p is estimated (p is far below 1 / pairs measured, so it must be extrapolated): per pair, from
the share of pairs with a query variant within the pHash radius and a fitted lower tail of their
PDQ distances (estimates.py, tail_fit.py); the verification's share by a tail fit of the near
pairs' margins (verification.py, bench/verification_tail.py). No fit sees a heavier component
that only appears beyond the measured range: the estimate is as good as the corpus.

The parts, in the order a run goes through them: corpus.py (the pictures), hashes.py (their
hashes, cached), pairs.py (every ordered pair, histogrammed), estimates.py and tail_fit.py (p),
verification.py (the verification stage), report.py (the figures), printing.py (the text).
"""
