"""Training: the LightningModule, the stage engine and its Lightning callback, pruning schedules, compute metering, export."""
