"""Partner hash lists: the lists abuse-prevention organisations share (ThreatExchange, StopNCII,
NCMEC, IWF, C3P), imported into the ticket database and written back out in their formats.

* :mod:`bot.hashlists.signals`: the list signal types (PDQ, pHash, MD5), their names in the
  field's files and their validation, through python-threatexchange where it has the type;
* :mod:`bot.hashlists.reading`: a list file (python-threatexchange's text lines, CSV, TSV) read
  into entries and bad lines, each with its line number;
* :mod:`bot.hashlists.storage`: a read list stored in one transaction, or refused whole;
* :mod:`bot.hashlists.export`: the approved pictures' PDQ hashes as a list python-threatexchange
  (and HMA through it) reads;
* :mod:`bot.hashlists.scan`: a stored list's hashes against every entry's whole-picture hashes;
* :mod:`bot.hashlists.exchanges`: StopNCII, NCMEC and ThreatExchange through python-threatexchange's
  API clients, credentials from the environment, a fetch's records and checkpoint;
* :mod:`bot.hashlists.fetching`: a fetch's records made into a list that storage takes as a file.

Filing a scan's hits for review comes next (issue 21).
"""

import logging

# python-threatexchange imports faiss, whose loader logs at INFO every CPU feature it tried: noise
# on every import, said before a single list line is read.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

# The list formats `hash-lists import --format` takes (bot.hashlists.reading): here, so that the
# command line registers them without loading python-threatexchange (and faiss) at every start.
FORMATS = ("auto", "te", "csv", "tsv")
