"""``dsvae``: the Disentangled Sequential Autoencoder of Li & Mandt (ICML 2018).

Generative model (Li & Mandt 2018, eq. 1-2)::

    p(x_{1:T}, z_{1:T}, f) = p(f) prod_t p(z_t | z_<t) p(x_t | z_t, f),

with p(f) = N(0, I), a learned LSTM prior p(z_t | z_<t) = N(mu(h_t), diag sigma^2(h_t)),
and a frame decoder p(x_t | z_t, f) reading the concatenation [f, z_t].

Inference, the "full" model (sec. 3.1, eq. 4)::

    q(f, z_{1:T} | x_{1:T}) = q(f | x_{1:T}) q(z_{1:T} | x_{1:T}, f):

q(f | x_{1:T}) reads the frame features with a bidirectional LSTM (the last forward and
first backward states); q(z_t | x_{1:T}, f) runs a bidirectional LSTM over [frame
features, f] and a forward RNN over its outputs, then Gaussian heads per frame.

Loss (the negative ELBO, eq. 5), averaged over the batch::

    -sum_t E_q log p(x_t | z_t, f) + KL(q(f|x) || p(f))
        + sum_t E_q KL(q(z_t | x, f) || p(z_t | z_<t)),

the last term evaluated in closed form given the sampled z_<t (one-sample estimate of the
expectation over z_<t).

Defaults: f of size 256 and z_t of size 32 (the Sprites sizes of the paper); Adam with
learning rate 2e-4 and betas (0.9, 0.999), as the public re-implementation
yatindandi/Disentangled-Sequential-Autoencoder (README "Optimizer": lr 0.0002, betas 0.9 and
0.999, batch size 25, 200 epochs). No code from the authors was found and the paper text
was not available here, so the rate is not confirmed against the paper itself. LSTM hidden
size 256 for every recurrent layer (chosen to keep CPU runs affordable; that
re-implementation uses 512); frames encoded and decoded by the shared Locatello conv
networks rather than the paper's larger conv nets (stated deviation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from disbench.baselines import objectives as obj
from disbench.baselines.base import NonNegative
from disbench.baselines.networks import ConvDecoder
from disbench.baselines.registry import register
from disbench.baselines.seq_networks import (
    FrameEncoder,
    LSTMPrior,
    SequenceHparams,
    SequenceModel,
    check_sequence_batch,
)
from torch import nn


@dataclass
class DSVAEHparams(SequenceHparams):
    """DSVAE hyperparameters (see :class:`SequenceHparams`); ``beta`` weights both KLs
    (1 = the ELBO of the paper)."""

    beta: NonNegative = 1.0


@register("dsvae")
class DSVAE(SequenceModel):
    """Li & Mandt 2018, "Disentangled Sequential Autoencoder", full q(z_t | x_{1:T}, f)."""

    Hparams = DSVAEHparams
    default_lr: ClassVar[float] = 2e-4

    def __init__(self, hparams: DSVAEHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        self.frames = FrameEncoder(hp.image_shape, hp.encoder_arch)
        feat = self.frames.out_dim
        self.f_lstm = nn.LSTM(feat, hp.hidden_dim, batch_first=True, bidirectional=True)
        self.f_mean = nn.Linear(2 * hp.hidden_dim, hp.static_dim)
        self.f_logvar = nn.Linear(2 * hp.hidden_dim, hp.static_dim)
        self.z_lstm = nn.LSTM(feat + hp.static_dim, hp.hidden_dim, batch_first=True,
                              bidirectional=True)
        self.z_rnn = nn.RNN(2 * hp.hidden_dim, hp.hidden_dim, batch_first=True)
        self.z_mean = nn.Linear(hp.hidden_dim, hp.dynamic_dim)
        self.z_logvar = nn.Linear(hp.hidden_dim, hp.dynamic_dim)
        self.prior = LSTMPrior(hp.dynamic_dim, hp.hidden_dim)
        self.decoder = ConvDecoder(hp.static_dim + hp.dynamic_dim, hp.image_shape)

    # -- inference ---------------------------------------------------------------------
    def q_static(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.f_lstm(feats)
        h = self.hparams.hidden_dim
        # last step of the forward direction, first step of the backward direction
        summary = torch.cat([out[:, -1, :h], out[:, 0, h:]], -1)
        return self.f_mean(summary), self.f_logvar(summary)

    def q_dynamic(self, feats: torch.Tensor, f: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        inp = torch.cat([feats, f.unsqueeze(1).expand(-1, feats.shape[1], -1)], -1)
        out, _ = self.z_lstm(inp)
        out, _ = self.z_rnn(out)
        return self.z_mean(out), self.z_logvar(out)

    def encode_static(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch(x, self.hparams)
        return self.q_static(self.frames(x))[0]

    def encode_dynamic(self, x: torch.Tensor) -> torch.Tensor:
        """Means of q(z_t | x_{1:T}, f) with f at its posterior mean, (N, T, dynamic_dim)."""
        check_sequence_batch(x, self.hparams)
        feats = self.frames(x)
        return self.q_dynamic(feats, self.q_static(feats)[0])[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch(x, self.hparams)
        feats = self.frames(x)
        f = self.q_static(feats)[0]
        return torch.cat([f, self.q_dynamic(feats, f)[0].flatten(1)], 1)

    # -- generation -------------------------------------------------------------------
    def decoder_logits(self, f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n, t, _ = z.shape
        inp = torch.cat([f.unsqueeze(1).expand(-1, t, -1), z], -1).reshape(n * t, -1)
        logits = self.decoder(inp)
        return logits.reshape(n, t, *logits.shape[1:])

    # -- objective --------------------------------------------------------------------
    def _terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_sequence_batch(x, self.hparams)
        feats = self.frames(x)
        f_mean, f_logvar = self.q_static(feats)
        f = obj.reparameterize(f_mean, f_logvar)
        z_mean, z_logvar = self.q_dynamic(feats, f)
        z = obj.reparameterize(z_mean, z_logvar)
        p_mean, p_logvar = self.prior.conditionals(z)
        recon = self.reconstruction_cost(x, self.decoder_logits(f, z))
        kl_f = obj.kl_normal_std(f_mean.float(), f_logvar.float())
        kl_z = obj.kl_normal(z_mean.float(), z_logvar.float(), p_mean.float(),
                             p_logvar.float()).sum(1)
        return {"recon": recon, "kl_static": kl_f, "kl_dynamic": kl_z}

    # `step` unused here: the Model.loss interface
    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:  # noqa: ARG002
        t = {k: v.mean() for k, v in self._terms(x).items()}
        kl = t["kl_static"] + t["kl_dynamic"]
        total = t["recon"] + self.hparams.beta * kl
        return {"loss": total, **t, "elbo": -(t["recon"] + kl).detach()}

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Single-sample ELBO per sequence, (N,)."""
        t = self._terms(x)
        return -(t["recon"] + t["kl_static"] + t["kl_dynamic"])
