"""The task encoder: a recurrent (GRU) auto-encoder over a task's support samples.

M-NAS embeds a task with a recurrent auto-encoder over its samples.  Each support sample becomes one
vector — (x, y) for regression; for images, the image average-pooled to 6x6 with its one-hot label
appended (pooling keeps the GRU's input small; the label says which samples belong together).  The GRU
encoder reads the sequence; its last hidden state is the task embedding.  A GRU decoder, started from
the embedding, reconstructs the sequence in reverse order (the classic sequence auto-encoder); the
reconstruction error is the encoder's own training signal.  Where the paper is silent (sizes, pooling,
order) these are our choices.

The embedding drives the controller (``controller.py``) and the modulation of the meta-weights
(``modulation.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.mnas.episodes import Episode

POOL = 6  # images are pooled to POOL x POOL before the encoder reads them


def sample_features(episode: Episode, ways: int) -> torch.Tensor:
    """The support set as a sequence of vectors, shape (samples, features)."""
    x, y = episode.support_x, episode.support_y
    if x.dim() == 4:
        pooled = F.adaptive_avg_pool2d(x, POOL).flatten(1)
        return torch.cat([pooled, F.one_hot(y, ways).float()], dim=1)
    return torch.cat([x, y], dim=1)


def feature_dim(input_shape: tuple[int, ...], ways: int) -> int:
    return input_shape[0] * POOL * POOL + ways if len(input_shape) == 3 else input_shape[0] + 1


class TaskEncoder(nn.Module):
    def __init__(self, in_dim: int, embed_dim: int):
        super().__init__()
        self.encoder = nn.GRU(in_dim, embed_dim, batch_first=True)
        self.decoder = nn.GRU(in_dim, embed_dim, batch_first=True)
        self.readout = nn.Linear(embed_dim, in_dim)

    def forward(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding of shape (embed_dim,), reconstruction loss) of one task's sequence (samples, features)."""
        seq = seq.unsqueeze(0)
        _, hidden = self.encoder(seq)
        target = seq.flip(1)
        # teacher forcing: the decoder sees the previous target vector (zeros first) and predicts the next
        inputs = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], dim=1)
        decoded, _ = self.decoder(inputs, hidden)
        recon = F.mse_loss(self.readout(decoded), target)
        return hidden[0, 0], recon

