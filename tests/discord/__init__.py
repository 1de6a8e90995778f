"""Tests that drive real discord.py objects against a fake Discord REST API (see ``fake_discord``).

discord.py 2.7.1 imports the standard library's ``audioop`` (voice support), which warns with a
DeprecationWarning on Python 3.11/3.12; the import is done here once with that warning silenced.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
    import discord  # noqa: F401
