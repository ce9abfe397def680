"""The row layout of a batch of sequences in the time loop (``PackedSequence``'s).

A batch is stored flat, as ``PackedSequence.data`` is: step ``t`` owns rows
``offsets[t] : offsets[t] + sizes[t]``, which are the first ``sizes[t]`` sequences of a batch sorted by
decreasing length. A plain ``(T, B)`` batch is the case ``sizes[t] = B`` for every step (``uniform``);
its flat rows are then simply ``x.reshape(T * B, F)``. Because the sequences still running always
form a prefix of the batch, a step works on ``state[:sizes[t]]`` and the states of finished sequences
stay where they are.
"""
from __future__ import annotations

from functools import cached_property

import torch
from torch import Tensor

__all__ = ["Steps"]


class Steps:
    def __init__(self, sizes: tuple[int, ...]):
        if not sizes or sizes[0] < 1 or any(b < a for a, b in zip(sizes[1:], sizes)):
            raise ValueError(f"batch sizes must be positive and non-increasing, got {sizes}")
        self.sizes = tuple(int(b) for b in sizes)
        offsets, n = [], 0
        for b in self.sizes:
            offsets.append(n)
            n += b
        self.offsets = tuple(offsets)
        self.total = n
        self.batch = self.sizes[0]
        self.uniform = self.sizes[-1] == self.batch

    @classmethod
    def dense(cls, steps: int, batch: int) -> Steps:
        return cls((batch,) * steps)

    def __len__(self) -> int:
        return len(self.sizes)

    def rows(self, t: int) -> slice:
        return slice(self.offsets[t], self.offsets[t] + self.sizes[t])

    @cached_property
    def row_step(self) -> Tensor:
        """The step of each flat row, shape ``(total,)``."""
        return torch.repeat_interleave(torch.arange(len(self)), torch.tensor(self.sizes))

    @cached_property
    def reverse_index(self) -> Tensor:
        """Flat rows of the time-reversed batch: row ``(s, j)`` takes ``(len_j - 1 - s, j)``. Each
        sequence is reversed within its own length, as the reverse direction of ``nn.LSTM`` reads a
        ``PackedSequence``; the index is its own inverse."""
        step = self.row_step
        off = torch.tensor(self.offsets)
        seq = torch.arange(self.total) - off[step]
        length = (torch.tensor(self.sizes).unsqueeze(0) > seq.unsqueeze(1)).sum(1)
        return off[length - 1 - step] + seq

    def reverse(self, x: Tensor) -> Tensor:
        if self.uniform:
            return x.view(len(self), self.batch, -1).flip(0).reshape(x.shape)
        return x.index_select(0, self.reverse_index.to(x.device))

    def previous(self, first: Tensor, flat: Tensor) -> Tensor:
        """Each step's input state as flat rows: ``first[:sizes[0]]`` for step 0, then the rows of the
        step before (those of the sequences still running)."""
        if self.uniform:
            return torch.cat([first, flat[: self.total - self.batch]])
        parts = [first[: self.sizes[0]]]
        parts += [flat[self.offsets[t - 1]: self.offsets[t - 1] + self.sizes[t]] for t in range(1, len(self))]
        return torch.cat(parts)
