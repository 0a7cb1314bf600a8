"""Runs: the run specification, the store and its dense-model cache, resume, one job of a sweep."""
