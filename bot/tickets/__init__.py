"""Removal tickets: a durable store, the review lifecycle, the audit log, erasure, the removal list."""
