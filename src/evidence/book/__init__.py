"""The book wing."""
