# Required: the verl wheel installs a top-level `tests` package; this file makes `tests` resolve to ours.
