"""``rwae_mmd`` and ``rwae_gan``: the Disentangled Recurrent Wasserstein Autoencoder.

Han, Min, Han, Li & Zhang, "Disentangled Recurrent Wasserstein Autoencoder", ICLR 2021.

Model (the paper's Fig. 1a/b). A sequence x_{1:T} is encoded into a static code z_c
(a bidirectional LSTM over frame features) and dynamic codes z_m_t (an LSTM cell reading
the frame feature h_t and z_m_{t-1}); both encoders are Gaussian and reparameterised. The
decoder G concatenates [z_c, z_m_t] at every step, runs an LSTM and decodes each hidden
state into a frame. Priors: P(z_c) = N(0, I) and a learned recurrent prior
P(z_m_t | z_m_<t) (an LSTM cell, as in DSVAE).

Objective (the penalised sequential Wasserstein bound of the paper)::

    sum_t E c(x_t, G(z_c, z_m_t)) + beta_1 D(Q(z_c), P(z_c))
        + beta_2 sum_t D(Q(z_m_t | z_m_<t), P(z_m_t | z_m_<t)),

with c the decoder's negative log-likelihood (Gaussian default: the summed squared error,
up to a constant) and D either

- ``rwae_mmd``: the unbiased MMD^2 with the summed-scale inverse multiquadric kernel of
  Tolstikhin et al. 2018 (:func:`disbench.baselines.objectives.mmd_imq`), or
- ``rwae_gan``: an adversarial divergence (a discriminator per latent, trained with the
  logistic loss; the encoder minimises -log D(z_q) as in WAE-GAN, Tolstikhin et al. 2018,
  Algorithm 1, and the learned prior minimises -log(1 - D(z_p))).

The conditional term (``dynamic_penalty``). For each t, D compares pairs built from the
posterior codes z_m (one posterior sample per sequence) with the same pairs in which z_m_t
is replaced by z~_t ~ P(. | z_m_<t), a draw from the learned prior given the same
posterior history:

``"history"`` (default)
    (h_{t-1}, z_m_t) against (h_{t-1}, z~_t), where h_{t-1} is the state of the prior's
    LSTM after reading z_m_0 = 0, z_m_1, ..., z_m_{t-1} (:meth:`LSTMPrior.
    states_and_conditionals`), the same summary of z_m_<t on both sides. P(z_t | z_<t)
    depends on the history only through h_{t-1}, so D = 0 means Q(z_m_t | h_{t-1}) =
    P(z_m_t | z_m_<t) for Q-almost every history: the posterior's conditional, coarsened
    to what the prior's state keeps of the history, equals the prior's full-history
    conditional. It is the full match Q(z_m_t | z_m_<t) = P(z_m_t | z_m_<t) when h_{t-1}
    determines z_m_<t. The summary enters D as a fixed statistic (detached), so neither
    side can lower D by changing what it conditions on; the prior learns through z~_t,
    the encoder through z_m_t.
``"previous"``
    (z_m_{t-1}, z_m_t) against (z_m_{t-1}, z~_t) (disbench's earlier form). D = 0 means
    Q(z_m_t | z_m_{t-1}) = E_{Q(z_m_<t-1 | z_m_{t-1})} P(z_m_t | z_m_<t): a first-order
    match, the full-history one only if both processes are first-order Markov.

For ``rwae_mmd`` the kernel scales are those of a standard normal of the pair's dimension
(``hidden_dim + dynamic_dim`` or ``2 * dynamic_dim``); the LSTM state lies in (-1, 1), not
on that scale. The paper's own estimator could not be checked (see below).

Mutual information. Because D compares the *aggregate* posteriors Q(z) with the priors,
the paper shows (its KL analysis) that, unlike the per-sample KL of a sequential VAE,
which equals I(x; z) + KL(Q(z) || P(z)), R-WAE does not penalise the mutual information
between the input and z_c or z_m_t — relative to the VAE it maximises I(x; z_c) and
I(x; z_m_t). Those terms are therefore implicit in the objective; the loss dictionary logs
minibatch estimates ``mi_static`` = I(x; z_c) and ``mi_dynamic`` = mean_t I(x; z_m_t),
computed from the Gaussian encoders as mean_i [log q(z_i | x_i) - log mean_j q(z_i | x_j)]
(bounded by log M for a batch of M; logged, not optimised). Source for this reading: the
paper's abstract (openreview.net/forum?id=O7ms4LFdsX) says R-WAE "minimizes an upper bound of
a penalized form of the Wasserstein distance" and "simultaneously maximizes the mutual
information between input data and different disentangled latent factors", which a
(recurrent) VAE does not "explicitly enforce". We could not check the equation numbers or
the exact terms against the paper body here, and found no code from the authors.

Weak supervision (the paper's Fig. 1c/d): with ``num_actions = K > 0`` a categorical action
latent a is inferred from the dynamic codes, q(a | z_m_{1:T}) (an LSTM over z_m and a
softmax head), sampled with the Gumbel-softmax relaxation (Jang et al. 2017) at temperature
``tau``, and appended to the decoder input. Its aggregate posterior is matched to the
uniform prior with KL(mean_batch q(a | .) || U(K)) weighted by ``beta_action``. At decode
time a is the arg-max of q(a | z_m), so swapping and generation need only (z_c, z_m).

Defaults (the paper's Sprites setting could not be checked): beta_1 = beta_2 = 10 for MMD,
the WAE-MMD lambda of the authors' MNIST and dSprites configs (tolstikhin/wae ``configs.py``
``config_mnist``, ``config_dsprites``; its CelebA config uses 100), and 1 for GAN, the
``wae_gan`` default of :mod:`disbench.baselines.wae` (recorded there as the WAE paper's
WAE-GAN setting, unchecked); the code sizes of
:class:`~disbench.baselines.seq_networks.SequenceHparams`; Adam with learning rate 1e-4
(Locatello et al.) for the autoencoder and 5e-4, betas (0.5, 0.999), for the
discriminators.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from disbench.baselines import objectives as obj
from disbench.baselines.base import NonNegative, NonNegativeInt, Positive
from disbench.baselines.networks import HIDDEN, ConvDecoder, mlp
from disbench.baselines.registry import register
from disbench.baselines.seq_networks import (
    FrameEncoder,
    LSTMPrior,
    SequenceHparams,
    SequenceModel,
    check_sequence_batch,
)
from disbench.errors import DisbenchError
from torch import nn

#: ``dynamic_penalty``: pair z_m_t with the prior's state after z_m_<t, or with z_m_{t-1}.
DYNAMIC_PENALTIES = ("history", "previous")


@dataclass
class RWAEHparams(SequenceHparams):
    """R-WAE hyperparameters.

    Attributes
    ----------
    beta_1, beta_2 : float
        Weights of the static and the dynamic divergences (None: 10 for MMD, 1 for GAN).
    num_actions : int
        0 (unsupervised) or the number of actions K: adds the categorical action latent.
    tau : float
        Gumbel-softmax temperature of the action latent.
    beta_action : float
        Weight of KL(mean q(a) || uniform).
    dynamic_penalty : {"history", "previous"}
        What the conditional term pairs z_m_t with: the prior LSTM's summary of z_m_<t
        (default) or z_m_{t-1} (see the module docstring).
    """

    beta_1: NonNegative | None = None
    beta_2: NonNegative | None = None
    num_actions: NonNegativeInt = 0
    tau: Positive = 0.5
    beta_action: NonNegative = 1.0
    dynamic_penalty: str = "history"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dynamic_penalty not in DYNAMIC_PENALTIES:
            raise DisbenchError(
                f"dynamic_penalty must be one of {', '.join(DYNAMIC_PENALTIES)}, "
                f"got {self.dynamic_penalty!r}"
            )
        if self.num_actions < 0 or self.num_actions == 1:
            raise DisbenchError(f"num_actions must be 0 (off) or >= 2, got {self.num_actions}")
        if not self.tau > 0:
            raise DisbenchError(f"tau must be > 0, got {self.tau}")


def minibatch_mutual_information(z: torch.Tensor, mean: torch.Tensor,
                                 logvar: torch.Tensor) -> torch.Tensor:
    """Minibatch estimate of I(x; z) under q(z|x) = N(mean, diag exp(logvar)).

    mean_i [log q(z_i | x_i) - log (1/M) sum_j q(z_i | x_j)] for codes z (M, D).
    """
    lq = obj.log_normal_diag(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))  # (M, M)
    own = lq.diagonal()
    return (own - (torch.logsumexp(lq, 1) - math.log(len(z)))).mean()


class _RWAE(SequenceModel):
    """The shared R-WAE networks; subclasses define the divergence D."""

    Hparams = RWAEHparams
    default_beta: float = 10.0
    #: the adversarial variant reuses the step's codes for its discriminator update
    keeps_latents: bool = False

    def __init__(self, hparams: RWAEHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        self.frames = FrameEncoder(hp.image_shape, hp.encoder_arch)
        feat = self.frames.out_dim
        self.c_lstm = nn.LSTM(feat, hp.hidden_dim, batch_first=True, bidirectional=True)
        self.c_mean = nn.Linear(2 * hp.hidden_dim, hp.static_dim)
        self.c_logvar = nn.Linear(2 * hp.hidden_dim, hp.static_dim)
        self.m_cell = nn.LSTMCell(feat + hp.dynamic_dim, hp.hidden_dim)
        self.m_mean = nn.Linear(hp.hidden_dim, hp.dynamic_dim)
        self.m_logvar = nn.Linear(hp.hidden_dim, hp.dynamic_dim)
        self.prior = LSTMPrior(hp.dynamic_dim, hp.hidden_dim)
        k = hp.num_actions
        if k:
            self.a_lstm = nn.LSTM(hp.dynamic_dim, hp.hidden_dim, batch_first=True)
            self.a_head = nn.Linear(hp.hidden_dim, k)
        self.g_lstm = nn.LSTM(hp.static_dim + hp.dynamic_dim + k, HIDDEN, batch_first=True)
        self.decoder = ConvDecoder(HIDDEN, hp.image_shape)

    @property
    def beta_1(self) -> float:
        b = self.hparams.beta_1
        return self.default_beta if b is None else b

    @property
    def beta_2(self) -> float:
        b = self.hparams.beta_2
        return self.default_beta if b is None else b

    # -- inference ---------------------------------------------------------------------
    def q_static(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.c_lstm(feats)
        h = self.hparams.hidden_dim
        summary = torch.cat([out[:, -1, :h], out[:, 0, h:]], -1)
        return self.c_mean(summary), self.c_logvar(summary)

    def q_dynamic(self, feats: torch.Tensor, sample: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, mean, logvar), each (N, T, dynamic_dim); z_{t-1} feeds step t (mean if not
        ``sample``)."""
        n, t, _ = feats.shape
        prev = feats.new_zeros(n, self.hparams.dynamic_dim)
        state = None
        zs, means, logvars = [], [], []
        for k in range(t):
            h, c = self.m_cell(torch.cat([feats[:, k], prev], -1), state)
            state = (h, c)
            mean, logvar = self.m_mean(h), self.m_logvar(h)
            prev = obj.reparameterize(mean, logvar) if sample else mean
            zs.append(prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), torch.stack(means, 1), torch.stack(logvars, 1)

    def action_logits(self, dynamic: torch.Tensor) -> torch.Tensor:
        """Logits of q(a | z_m_{1:T}), (N, K)."""
        out, _ = self.a_lstm(dynamic)
        return self.a_head(out[:, -1])

    def encode_static(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch(x, self.hparams)
        return self.q_static(self.frames(x))[0]

    def encode_dynamic(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch(x, self.hparams)
        return self.q_dynamic(self.frames(x), sample=False)[1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch(x, self.hparams)
        feats = self.frames(x)
        return torch.cat([self.q_static(feats)[0],
                          self.q_dynamic(feats, sample=False)[1].flatten(1)], 1)

    @torch.no_grad()
    def encode_action(self, x: torch.Tensor) -> torch.Tensor:
        """q(a | z_m) probabilities (N, K) at the dynamic means (weak supervision only)."""
        if not self.hparams.num_actions:
            raise ValueError("encode_action needs num_actions > 0")
        return self.action_logits(self.encode_dynamic(x)).softmax(-1)

    # -- generation -------------------------------------------------------------------
    def decoder_logits(self, static: torch.Tensor, dynamic: torch.Tensor,
                       action: torch.Tensor | None = None) -> torch.Tensor:
        n, t, _ = dynamic.shape
        parts = [static.unsqueeze(1).expand(-1, t, -1), dynamic]
        if self.hparams.num_actions:
            if action is None:
                action = F.one_hot(self.action_logits(dynamic).argmax(-1),
                                   self.hparams.num_actions).to(dynamic.dtype)
            parts.append(action.unsqueeze(1).expand(-1, t, -1))
        h, _ = self.g_lstm(torch.cat(parts, -1))
        logits = self.decoder(h.reshape(n * t, -1))
        return logits.reshape(n, t, *logits.shape[1:])

    # -- objective --------------------------------------------------------------------
    def latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior and prior samples used by the objective."""
        check_sequence_batch(x, self.hparams)
        feats = self.frames(x)
        c_mean, c_logvar = self.q_static(feats)
        zc = obj.reparameterize(c_mean, c_logvar)
        zm, m_mean, m_logvar = self.q_dynamic(feats, sample=True)
        states, p_mean, p_logvar = self.prior.states_and_conditionals(zm)
        zm_prior = obj.reparameterize(p_mean, p_logvar)  # z~_t ~ P(. | posterior z_<t)
        history = self.history_summary(zm, states)
        out = {"zc": zc, "c_mean": c_mean, "c_logvar": c_logvar, "zm": zm, "m_mean": m_mean,
               "m_logvar": m_logvar, "zc_prior": self.sample_static(len(x)),
               "pair_q": torch.cat([history, zm], -1),
               "pair_p": torch.cat([history, zm_prior], -1)}
        if self.hparams.num_actions:
            out["a_logits"] = self.action_logits(zm)
        return out

    @property
    def history_dim(self) -> int:
        """Size of the history part of the dynamic pairs."""
        hp = self.hparams
        return hp.hidden_dim if hp.dynamic_penalty == "history" else hp.dynamic_dim

    def history_summary(self, zm: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """What z_m_t is paired with, (N, T, history_dim): the prior's (detached) state
        after z_m_<t, or z_m_{t-1} (z_m_0 = 0)."""
        if self.hparams.dynamic_penalty == "history":
            return states.detach()
        return torch.cat([zm.new_zeros(zm.shape[0], 1, zm.shape[2]), zm[:, :-1]], 1)

    def divergences(self, lat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"d_static": scalar, "d_dynamic": scalar summed over t}``."""
        raise NotImplementedError

    # `step` unused here: the Model.loss interface
    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:  # noqa: ARG002
        lat = self.latents(x)
        action = None
        extra: dict[str, torch.Tensor] = {}
        if self.hparams.num_actions:
            action = F.gumbel_softmax(lat["a_logits"], tau=self.hparams.tau, hard=False)
            q_a = lat["a_logits"].softmax(-1).mean(0)
            k = self.hparams.num_actions
            extra["kl_action"] = (q_a * (q_a.clamp_min(1e-12).log() + math.log(k))).sum()
        recon = self.reconstruction_cost(x, self.decoder_logits(lat["zc"], lat["zm"],
                                                                 action)).mean()
        d = self.divergences(lat)
        total = recon + self.beta_1 * d["d_static"] + self.beta_2 * d["d_dynamic"]
        if "kl_action" in extra:
            total = total + self.hparams.beta_action * extra["kl_action"]
        with torch.no_grad():
            mi_c = minibatch_mutual_information(lat["zc"], lat["c_mean"], lat["c_logvar"])
            mi_m = torch.stack([
                minibatch_mutual_information(lat["zm"][:, t], lat["m_mean"][:, t],
                                             lat["m_logvar"][:, t])
                for t in range(self.hparams.frames)]).mean()
        if self.keeps_latents:
            self._last_latents = lat
        return {"loss": total, "recon": recon, **d, **extra, "mi_static": mi_c,
                "mi_dynamic": mi_m}


@register("rwae_mmd")
class RWAEMMD(_RWAE):
    """R-WAE with D = unbiased IMQ-kernel MMD^2 (Han et al. 2021; Tolstikhin et al. 2018)."""

    default_beta = 10.0

    def divergences(self, lat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        if lat["zc"].shape[0] < 2:
            raise ValueError("rwae_mmd needs batches of at least 2 sequences")
        cs_c = obj.wae_imq_scales(hp.static_dim)
        cs_m = obj.wae_imq_scales(self.history_dim + hp.dynamic_dim)
        d_static = obj.mmd_imq(lat["zc"], lat["zc_prior"], cs_c)
        # (T, N, 2D): one MMD per time step, summed over t
        d_dynamic = obj.mmd_imq(lat["pair_q"].transpose(0, 1), lat["pair_p"].transpose(0, 1),
                                cs_m).sum()
        return {"d_static": d_static, "d_dynamic": d_dynamic}


@register("rwae_gan")
class RWAEGAN(_RWAE):
    """R-WAE with an adversarial D: a discriminator on z_c and one on the dynamic pairs."""

    default_beta = 1.0
    keeps_latents = True
    disc_lr: float = 5e-4
    disc_betas: tuple[float, float] = (0.5, 0.999)

    def __init__(self, hparams: RWAEHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        # WAE-GAN's discriminator: four hidden layers of 512 units.
        self.disc_static = mlp([hp.static_dim, 512, 512, 512, 512, 1])
        self.disc_dynamic = mlp([self.history_dim + hp.dynamic_dim, 512, 512, 512, 512, 1])

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.disc_static.parameters(), *self.disc_dynamic.parameters()]

    def model_parameters(self):
        disc = {id(p) for p in self.discriminator_parameters()}
        return (p for p in self.parameters() if id(p) not in disc)

    def make_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        opts = super().make_optimizers(lr)
        opts["discriminator"] = torch.optim.Adam(self.discriminator_parameters(),
                                                 lr=self.disc_lr, betas=self.disc_betas)
        return opts

    def divergences(self, lat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # encoder: -log D(z_q); learned prior: -log(1 - D(z_p)) (D = prob. of "prior")
        d_static = F.softplus(-self.disc_static(lat["zc"])).mean()
        dq = F.softplus(-self.disc_dynamic(lat["pair_q"])).mean((0, 2))
        dp = F.softplus(self.disc_dynamic(lat["pair_p"])).mean((0, 2))
        return {"d_static": d_static, "d_dynamic": (dq + dp).sum()}

    def discriminator_loss(self, lat: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logistic loss: prior samples labelled 1, posterior samples 0 (inputs detached)."""
        def bce(d: nn.Module, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
            return F.softplus(-d(p.detach())).mean() + F.softplus(d(q.detach())).mean()

        return (bce(self.disc_static, lat["zc_prior"], lat["zc"])
                + bce(self.disc_dynamic, lat["pair_p"], lat["pair_q"]))

    def train_step_tensors(self, x: torch.Tensor, step: int,
                           optimizers: dict[str, torch.optim.Optimizer]
                           ) -> dict[str, torch.Tensor]:
        """Autoencoder step, then one discriminator step on the same (detached) codes."""
        opt, dopt = optimizers["model"], optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            terms = self.loss(x, step)
        terms["loss"].backward()
        opt.step()
        dopt.zero_grad(set_to_none=True)  # drop the gradients the model loss left on D
        with self.autocast():
            d_loss = self.discriminator_loss(self._last_latents)
        d_loss.backward()
        dopt.step()
        self._last_latents = None
        out = {k: v.detach().float() for k, v in terms.items()}
        out["disc_loss"] = d_loss.detach().float()
        return out
