"""``dagmm``: the Deep Autoencoding Gaussian Mixture Model (Zong et al., ICLR 2018), an OoD
baseline.

Zong, Song, Min, Cheng, Lumezanu, Cho & Chen, "Deep Autoencoding Gaussian Mixture Model for
Unsupervised Anomaly Detection", ICLR 2018 (openreview.net/forum?id=BJJLHbb0-). The paper
text was not available here; the model follows two implementations read for it:
danieltan07/dagmm (``model.py``, ``main.py``, ``solver.py``; a widely used PyTorch
reproduction, the paper's KDDCUP setting) and ganmodokix/vaetc ``vaetc/models/dagmm.py`` (the
DAGMM that the GWAE paper's OoD experiment scores, ganmodokix/gwae ``clu.py``
``anormaly_dagmm``).

Model. A compression network (an autoencoder: here the shared Locatello et al. conv encoder
with one deterministic head and the shared conv decoder) maps x to a code z_c and a
reconstruction x'; two reconstruction features are appended,
``z_r = (||x - x'|| / ||x||, cos(x, x'))`` (both implementations; vaetc adds 1e-5 to the
denominators, as here). An estimation network predicts soft memberships
``gamma = softmax(MLN(z))`` over ``K = gmm_components`` components (vaetc's network:
dense 256, SiLU, dense K; no dropout). From a minibatch the GMM parameters are the
gamma-weighted moments (both implementations)::

    phi_k = mean_i gamma_ik,   mu_k = sum_i gamma_ik z_i / sum_i gamma_ik,
    Sigma_k = sum_i gamma_ik (z_i - mu_k)(z_i - mu_k)^T / sum_i gamma_ik  (+ 1e-6 I),

and the sample energy is the negative log-density of the mixture::

    E(z) = -log sum_k phi_k N(z; mu_k, Sigma_k)
         = -logsumexp_k [log phi_k - 1/2 (z - mu_k)^T Sigma_k^-1 (z - mu_k)
                         - 1/2 log det(2 pi Sigma_k)]

(computed here through a Cholesky factor). Both implementations deviate in the normaliser:
danieltan07's ``compute_energy`` divides by the square root of the product of the Cholesky
diagonal of ``2 pi Sigma_k``, i.e. by ``det(2 pi Sigma_k)^(1/4)``, and vaetc's ``energy`` uses
``logdet(Sigma_k * log(2 pi))`` (see ``gmm_input`` below); the Gaussian density's own
``sqrt(det(2 pi Sigma_k))`` is used here. The objective, minimised, is

    L = mean_i ||x_i - x'_i||^2 + lambda_energy * mean_i E(z_i) + lambda_cov * P(Sigma),
    P(Sigma) = sum_k sum_j 1 / Sigma_k,jj,

the squared error summed over pixels and averaged over the batch (vaetc's ``loss_ae``;
danieltan07 averages over pixels too), ``lambda_energy = 0.1`` and ``lambda_cov = 0.005``
(danieltan07 ``main.py`` defaults ``--lambda_energy`` and ``--lambda_cov_diag``).

``gmm_input`` (what the mixture models):

``"paper"`` (default)
    z = [z_c, z_r], the compression code with the reconstruction features (danieltan07,
    after the paper's design: the estimation network and the GMM see the same z).
``"code"``
    vaetc's variant: the estimation network reads [z_c, z_r] but the GMM and the energy
    use z_c alone (the DAGMM of the GWAE paper's OoD comparison). vaetc's
    ``logdet(Sigma * log(2 pi))`` differs from ``logdet(2 pi Sigma)`` by the same constant
    for every component, so its energies are a constant shift of these (no ranking
    changes).

Scoring. For new data the GMM parameters of the training distribution are needed. vaetc
keeps running estimates, updated after every training step with momentum 0.1 (the first
step copies the batch estimate); the same is done here (buffers ``gmm_phi``, ``gmm_mean``,
``gmm_cov``, saved with the model). danieltan07 scores with the last batch's estimate.
:meth:`DAGMM.energy` is E under those parameters and :meth:`DAGMM.ood_score` its negation
(higher = more in-distribution, disbench's convention); ``clu.py`` uses the energy itself as
its anomaly score.

Optimiser: Adam, lr 1e-4 (the ``lr`` of the gwae repository's settings files; vaetc's
optimiser uses betas (0.9, 0.999) and eps 1e-7). Defaults with no source read here:
``gmm_components`` 2 (danieltan07's ``--gmm_k`` default; the GWAE experiment's value is not
in its repository). The running-estimate update happens in :meth:`DAGMM.train_step_tensors`,
after the optimiser step, so DAGMM trains as single runs (not as batched ensembles).
``encode`` returns z_c; ``sample_prior`` draws z_c from the running mixture's marginal on
the code dimensions (DAGMM is no generative model of x; this makes ``sample`` defined).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
from disbench.baselines.base import Model, ModelHparams, NonNegative, Range
from disbench.baselines.networks import ConvDecoder, DeterministicEncoder
from disbench.baselines.registry import register
from disbench.errors import DisbenchError
from torch import Tensor, nn

GMM_INPUTS = ("paper", "code")
#: added to the denominators of the reconstruction features (vaetc ``EPS``)
FEATURE_EPS = 1e-5
#: added to the diagonal of every covariance estimate (vaetc)
COV_EPS = 1e-6
#: momentum of the running GMM parameters (vaetc ``self.momentum``)
MOMENTUM = 0.1
#: width of the estimation network's hidden layer (vaetc)
ESTIMATION_HIDDEN = 256


def reconstruction_features(x: Tensor, x_rec: Tensor) -> Tensor:
    """(N, 2): relative Euclidean distance ``||x - x'|| / ||x||`` and cosine similarity."""
    a, b = x.flatten(1), x_rec.flatten(1)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    rel = (a - b).norm(dim=1) / (na + FEATURE_EPS)
    cos = (a * b).sum(dim=1) / (na * nb + FEATURE_EPS)
    return torch.stack([rel, cos], dim=1)


def gmm_parameters(z: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mixing weights (K,), means (K, G) and covariances (K, G, G) from memberships (N, K)."""
    n_k = gamma.sum(dim=0)
    phi = n_k / gamma.shape[0]
    mean = gamma.T @ z / n_k[:, None]
    diff = z[None] - mean[:, None]                                    # (K, N, G)
    cov = torch.einsum("kn,kni,knj->kij", gamma.T, diff, diff) / n_k[:, None, None]
    cov = cov + COV_EPS * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return phi, mean, cov


def gmm_energy(z: Tensor, phi: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """Sample energy ``-log sum_k phi_k N(z; mean_k, cov_k)`` of each row of z (N, G)."""
    chol = torch.linalg.cholesky(cov)                                 # (K, G, G)
    diff = (z[None] - mean[:, None]).unsqueeze(-1)                    # (K, N, G, 1)
    sol = torch.linalg.solve_triangular(chol[:, None], diff, upper=False).squeeze(-1)
    maha = (sol ** 2).sum(-1)                                         # (K, N)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    g = z.shape[1]
    log_norm = 0.5 * (logdet + g * math.log(2.0 * math.pi))
    log_phi = torch.log(phi.clamp_min(torch.finfo(phi.dtype).tiny))
    return -torch.logsumexp(log_phi[:, None] - 0.5 * maha - log_norm[:, None], dim=0)


def covariance_penalty(cov: Tensor) -> Tensor:
    """``sum_k sum_j 1 / cov_k,jj`` (penalises collapsing components)."""
    return (1.0 / torch.diagonal(cov, dim1=-2, dim2=-1)).sum()


@dataclass
class DAGMMHparams(ModelHparams):
    """DAGMM hyperparameters (defaults and sources: see the module docstring).

    Attributes
    ----------
    gmm_components : int
        Mixture components K (2).
    lambda_energy : float
        Weight of the mean sample energy (0.1).
    lambda_cov : float
        Weight of the covariance-diagonal penalty (0.005).
    gmm_input : {"paper", "code"}
        Model [z_c, z_r] (paper) or z_c only (vaetc) with the mixture.
    """

    # a mixture needs two components at least
    gmm_components: Annotated[int, Range(ge=2)] = 2
    lambda_energy: NonNegative = 0.1
    lambda_cov: NonNegative = 0.005
    gmm_input: str = "paper"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gmm_input not in GMM_INPUTS:
            raise DisbenchError(f"dagmm gmm_input must be one of {', '.join(GMM_INPUTS)}, "
                                f"got {self.gmm_input!r}")
        for key in ("lambda_energy", "lambda_cov"):
            if not getattr(self, key) >= 0:
                raise DisbenchError(f"dagmm {key} must be >= 0, got {getattr(self, key)}")


@register("dagmm")
class DAGMM(Model):
    """Compression network + estimation network + GMM energy (Zong et al. 2018)."""

    Hparams: ClassVar[type] = DAGMMHparams
    default_lr: ClassVar[float] = 1e-4
    default_eps: ClassVar[float] = 1e-7

    def __init__(self, hparams: DAGMMHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        self.encoder = DeterministicEncoder(hp.image_shape, hp.latent_dim, hp.encoder_arch)
        self.decoder = ConvDecoder(hp.latent_dim, hp.image_shape)
        k, d = hp.gmm_components, hp.latent_dim
        self.estimation = nn.Sequential(nn.Linear(d + 2, ESTIMATION_HIDDEN), nn.SiLU(),
                                        nn.Linear(ESTIMATION_HIDDEN, k))
        g = self.gmm_dim
        self.register_buffer("gmm_phi", torch.full((k,), 1.0 / k))
        self.register_buffer("gmm_mean", torch.zeros(k, g))
        self.register_buffer("gmm_cov", torch.eye(g).repeat(k, 1, 1))
        self.register_buffer("gmm_steps", torch.zeros((), dtype=torch.long))

    @property
    def gmm_dim(self) -> int:
        """Dimension of what the mixture models: latent_dim (+ 2 with ``gmm_input="paper"``)."""
        return self.hparams.latent_dim + (2 if self.hparams.gmm_input == "paper" else 0)

    # -- networks -----------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(the estimation network's input [z_c, z_r], the GMM's input, the reconstruction)."""
        z_c = self.encoder(x)
        x_rec = torch.sigmoid(self.decoder(z_c))
        z = torch.cat([z_c, reconstruction_features(x, x_rec)], dim=1)
        return z, (z if self.hparams.gmm_input == "paper" else z_c), x_rec

    # -- objective ----------------------------------------------------------------------
    def _objective(self, x: Tensor) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor]]:
        hp = self.hparams
        z, z_gmm, x_rec = self.features(x)
        gamma = torch.softmax(self.estimation(z), dim=1)
        params = gmm_parameters(z_gmm.float(), gamma.float())
        energy = gmm_energy(z_gmm.float(), *params).mean()
        penalty = covariance_penalty(params[2])
        recon = ((x - x_rec) ** 2).flatten(1).sum(1).mean()
        loss = recon + hp.lambda_energy * energy + hp.lambda_cov * penalty
        terms = {"loss": loss, "recon": recon, "energy": energy, "cov_penalty": penalty}
        return terms, tuple(p.detach() for p in params)

    # `step` unused here: the Model.loss interface
    def loss(self, x: Tensor, step: int) -> dict[str, Tensor]:  # noqa: ARG002
        return self._objective(x)[0]

    def train_step_tensors(self, x: Tensor, step: int,  # noqa: ARG002 (Model.train_step_tensors)
                           optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        """The default step, then the running GMM estimates move towards this batch's."""
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            terms, params = self._objective(x)
        terms["loss"].backward()
        opt.step()
        self.update_gmm(*params)
        return {k: v.detach().float() for k, v in terms.items()}

    @torch.no_grad()
    def update_gmm(self, phi: Tensor, mean: Tensor, cov: Tensor) -> None:
        """Running estimates: copy on the first step, then ``(1 - m) old + m new``."""
        m = 1.0 if int(self.gmm_steps) == 0 else MOMENTUM
        for buf, new in ((self.gmm_phi, phi), (self.gmm_mean, mean), (self.gmm_cov, cov)):
            buf.mul_(1.0 - m).add_(new.to(buf.dtype), alpha=m)
        self.gmm_steps += 1

    # -- scores and samples -------------------------------------------------------------
    @torch.no_grad()
    def energy(self, x: Tensor) -> Tensor:
        """Sample energy (N,) of images x under the running GMM (higher = more anomalous)."""
        _, z_gmm, _ = self.features(x)
        return gmm_energy(z_gmm.float(), self.gmm_phi, self.gmm_mean, self.gmm_cov)

    @torch.no_grad()
    def code_energy(self, z: Tensor) -> Tensor:
        """Sample energy (N,) of codes z_c under the running GMM: what ganmodokix/gwae
        ``clu.py`` ``anormaly_dagmm`` computes from the encoded codes (vaetc's DAGMM, whose
        mixture models the code alone, ``gmm_input="code"``)."""
        if self.hparams.gmm_input != "code":
            raise DisbenchError(
                "the code energy needs a DAGMM whose mixture models the code alone "
                f"(gmm_input='code', vaetc's); this one has gmm_input={self.hparams.gmm_input!r}, "
                "whose energy also reads the reconstruction features: score it by energy(x)")
        return gmm_energy(z.float(), self.gmm_phi, self.gmm_mean, self.gmm_cov)

    @torch.no_grad()
    def ood_score(self, x: Tensor) -> Tensor:
        """``-energy(x)``: higher = more in-distribution."""
        return -self.energy(x)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        d = self.hparams.latent_dim
        comp = torch.multinomial(self.gmm_phi, n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.gmm_cov[:, :d, :d])
        eps = torch.randn(n, d, generator=generator, device=self.gmm_phi.device)
        return self.gmm_mean[comp, :d] + (chol[comp] @ eps.unsqueeze(-1)).squeeze(-1)


__all__ = ["DAGMM", "DAGMMHparams", "covariance_penalty", "gmm_energy", "gmm_parameters",
           "reconstruction_features"]
