"""The pipeline wing."""
