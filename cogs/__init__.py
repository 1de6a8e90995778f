"""The Discord front end: one cog per audience (the person checking a picture, the maintainers
reviewing), each a thin translation onto the core in ``bot/``; see docs/architecture.md."""
