"""Versioned schema changes, one file each, oldest first (``0001_...``)."""
