"""The config tree of the `prunelab` command, shipped in the wheel as the package `prunelab.conf`."""
