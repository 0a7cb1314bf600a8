"""Where results are watched: every Lightning logger (W&B first), fed stage by stage.

`loggers` (the `logger` config group's factories), `session` (starting a W&B run: mode, auth, fallbacks,
its name and group, the id its run folder keeps), `safe` (a WandbLogger whose failures never stop the run),
`sink` (the engine's sink and the per-stage and end-of-run logging), `upload` (a sweep's comparison as a W&B
summary run).
"""
