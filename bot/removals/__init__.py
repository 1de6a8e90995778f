"""The removal list: approved entries exported for a dataset's users, and applied to its metadata."""
