"""Self-attention with separate qkv and output Linears, so torch-pruning can remove whole heads."""

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention: `qkv` (embed -> 3 * heads * head_dim), scaled dot products, `proj` back.

    A drop-in for a batch-first `nn.MultiheadAttention` called as `attn(x, x, x, need_weights=False)`
    (torchvision's ViT). The head count follows the qkv width, so removing heads needs no bookkeeping.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.head_dim, self.dropout = embed_dim // num_heads, dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention) -> "SelfAttention":
        """The same function as `mha`, with its weights."""
        attn = cls(mha.embed_dim, mha.num_heads, bias=mha.in_proj_bias is not None, dropout=mha.dropout)
        with torch.no_grad():
            attn.qkv.weight.copy_(mha.in_proj_weight)
            attn.proj.weight.copy_(mha.out_proj.weight)
            if mha.in_proj_bias is not None:
                attn.qkv.bias.copy_(mha.in_proj_bias)
                attn.proj.bias.copy_(mha.out_proj.bias)
        return attn.to(mha.in_proj_weight.device)

    @property
    def num_heads(self) -> int:
        return self.qkv.out_features // (3 * self.head_dim)

    def forward(self, query: torch.Tensor, key=None, value=None, need_weights: bool = False, **_):
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise ValueError("SelfAttention computes self-attention only: pass the same tensor as query, key and value")
        b, n, _ = query.shape
        qkv = self.qkv(query).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(b, n, -1)), None


def _splittable(m: nn.Module) -> bool:
    return (isinstance(m, nn.MultiheadAttention) and m.batch_first and m._qkv_same_embed_dim
            and m.bias_k is None and not m.add_zero_attn)


def split_attention(model: nn.Module) -> int:
    """Replace every batch-first `nn.MultiheadAttention` in `model` by an equal `SelfAttention`; returns how many."""
    targets = [(name, m) for name, m in model.named_modules() if _splittable(m)]
    for name, mha in targets:
        parent, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent), leaf, SelfAttention.from_mha(mha))
    return len(targets)
