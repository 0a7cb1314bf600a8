"""Analysis: gathering runs, comparing methods, the report command."""
