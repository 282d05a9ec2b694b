"""The registry wing."""
