"""The LightningModule for causal language modelling: next-token cross-entropy, perplexity."""

import math
from typing import Callable, Iterable

import torch
from torch import nn

from prunelab.data.text import TextDataModule
from prunelab.errors import ConfigError
from prunelab.models.causal_lm import CausalLM
from prunelab.modes import eval_mode
from prunelab.training.losses import cross_entropy
from prunelab.training.module import StageModule


class LanguageModelModule(StageModule):
    """Next-token cross-entropy training of a causal LM `model` (token ids in, logits out); perplexity.

    Batches are (inputs, targets) windows of token ids, the targets the inputs shifted by one token
    (`prunelab.data.text.windows`). The optimizer and LR schedule are those of `StageModule`.
    """

    @classmethod
    def for_datamodule(cls, model: nn.Module, optimizer: Callable, scheduler: Callable, datamodule,
                       channels_last: bool = False) -> "LanguageModelModule":
        """The module for `datamodule`'s windows (the task's factory; a run calls it), once the data is known to
        fit the model: its tokenizer's ids within the model's embedding, its windows within the model's positions."""
        check_fits(model, datamodule)
        return cls(model, optimizer, scheduler, channels_last)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)

    def loss(self, batch) -> tuple[torch.Tensor, int]:
        x, y = batch
        return cross_entropy(self.forward(x), y), y.numel()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", cross_entropy(self.forward(x), y), prog_bar=True)

    @torch.no_grad()
    def evaluate(self, batches: Iterable) -> dict[str, float]:
        """{"ppl": perplexity}, outside any Trainer loop: exp of the mean next-token negative log-likelihood over
        every target token of `batches`. A split's batches are its non-overlapping windows of seq_len input
        tokens, whose targets are the next tokens, so that is the split's perplexity with each token predicted
        once from the tokens before it in its window."""
        total, tokens = 0.0, 0
        with eval_mode(self):
            for x, y in batches:
                y = y.to(self.device)
                total += float(cross_entropy(self.forward(x.to(self.device)), y, reduction="sum"))
                tokens += y.numel()
        return {"ppl": math.exp(total / max(tokens, 1))}


def check_fits(model: nn.Module, datamodule) -> None:
    """A ConfigError when `model` is no causal LM, `datamodule` has no token windows, its tokenizer gives ids beyond
    the model's embedding, or its windows are longer than the model's positions."""
    if not isinstance(model, CausalLM):
        raise ConfigError("model", f"language modelling needs a causal LM, not {type(model).__name__}",
                          "use model=causal_lm or a size such as model=llama_tiny")
    if not isinstance(datamodule, TextDataModule):
        raise ConfigError("dataset", f"language modelling needs token windows, not {type(datamodule).__name__}",
                          "use dataset=text")
    ids, rows = datamodule.tokenizer_vocab_size(), model.vocab_size
    if ids > rows:
        raise ConfigError("dataset.tokenizer", f"its vocabulary of {ids} tokens does not fit the model's {rows} "
                          "embeddings", "use the model's own tokenizer (dataset.tokenizer=<its folder>), or train "
                          f"the model from scratch with dataset.vocab_size={ids}")
    if datamodule.seq_len > model.max_positions:
        raise ConfigError("dataset.seq_len", f"{datamodule.seq_len} tokens is beyond the model's "
                          f"{model.max_positions} positions", f"set dataset.seq_len={model.max_positions} or less")
