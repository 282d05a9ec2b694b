"""The stats wing."""
