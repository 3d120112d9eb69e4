"""Objective terms shared by the baselines: pure functions on tensors.

Every function works on the last dimension as the latent dimension and accepts extra
leading batch dimensions where it says so (so 1-D per-dimension variants and vmapped
ensembles reuse them). Nothing here mutates its inputs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LOG_2PI = math.log(2 * math.pi)


# -- Gaussians -------------------------------------------------------------------------
def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2014, eq. 10)."""
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def kl_normal_std(mean: torch.Tensor, logvar: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form.

    Kingma & Welling 2014, appendix B: 0.5 * sum_d (mean^2 + var - logvar - 1).
    Summed over the last dimension when ``reduce`` (shape (...,)), else per dimension.
    """
    kl = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.sum(-1) if reduce else kl


def kl_normal(
    mean_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mean_p: torch.Tensor,
    logvar_p: torch.Tensor,
    reduce: bool = True,
) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) between diagonal Gaussians.

    0.5 * sum_d [logvar_p - logvar_q + (var_q + (mean_q - mean_p)^2) / var_p - 1].
    Arguments broadcast against each other.
    """
    kl = 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mean_q - mean_p).pow(2)) / logvar_p.exp() - 1.0
    )
    return kl.sum(-1) if reduce else kl


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z; mean, exp(logvar)) (not summed; arguments broadcast)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def log_normal_diag(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last dimension."""
    return log_normal(z, mean, logvar).sum(-1)


# -- total correlation (beta-TCVAE) -----------------------------------------------------
def total_correlation_mws(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> torch.Tensor:
    """Minibatch-weighted-sampling estimate of TC(z) = KL(q(z) || prod_d q(z_d)).

    Chen et al. 2018, "Isolating Sources of Disentanglement in Variational
    Autoencoders", sec. 3.1 (minibatch weighted sampling): with a batch of M codes
    z_i ~ q(z|x_i) from a data set of N points,

        log q(z_i)      ~= logsumexp_j log q(z_i | x_j) - log(N M)
        log q_d(z_id)   ~= logsumexp_j log q(z_id | x_j) - log(N M)

    and TC ~= mean_i [log q(z_i) - sum_d log q_d(z_id)]. The constants are kept as in the
    paper and the authors' code (disentanglement_lib drops them); note they add exactly
    (D - 1) log N to the value compared with the plain minibatch mixture
    (``dataset_size=1``), without changing any gradient. For a value that estimates the
    TC itself use :func:`total_correlation_weighted`.

    Parameters
    ----------
    z, mean, logvar : Tensor, shape (..., M, D)
    dataset_size : int
        N, the number of training examples.

    Returns
    -------
    Tensor, shape (...,)
    """
    m = z.shape[-2]
    lq = _pairwise_log_q(z, mean, logvar)
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(lq.sum(-1), dim=-1) - log_nm
    log_prod_qzd = (torch.logsumexp(lq, dim=-2) - log_nm).sum(-1)
    return (log_qz - log_prod_qzd).mean(-1)


def total_correlation_weighted(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> torch.Tensor:
    """TC estimate with the unbiased minibatch weights of the aggregate posterior.

    q(z_i) = (1/N) sum_n q(z_i | x_n): the term of x_i itself enters with weight 1/N,
    the other M - 1 batch points (uniform draws from the remaining N - 1) each stand for
    (N - 1)/(M - 1) points, weight (N - 1)/(N (M - 1)). The same weights estimate each
    marginal q_d. An importance-weighted variant in the spirit of Chen et al.'s minibatch
    stratified sampling (their appendix); with N = M every weight is 1/M.

    Shapes as :func:`total_correlation_mws`; requires M >= 2.
    """
    m = z.shape[-2]
    if m < 2:
        raise ValueError("total_correlation_weighted needs a batch of at least 2 codes")
    n = float(dataset_size)
    eye = torch.eye(m, dtype=torch.bool, device=z.device)
    # torch.full, not torch.tensor: no host-to-device copy (safe inside a CUDA graph).
    log_w = torch.where(eye, torch.full((), -math.log(n), dtype=z.dtype, device=z.device),
                        torch.full((), math.log((n - 1) / (n * (m - 1))) if n > 1 else -math.inf,
                                   dtype=z.dtype, device=z.device))
    lq = _pairwise_log_q(z, mean, logvar)  # (..., i, j, D)
    log_qz = torch.logsumexp(lq.sum(-1) + log_w, dim=-1)
    log_prod_qzd = torch.logsumexp(lq + log_w.unsqueeze(-1), dim=-2).sum(-1)
    return (log_qz - log_prod_qzd).mean(-1)


def _pairwise_log_q(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(..., M_i, M_j, D): log q(z_i,d | x_j) for every pair of batch points."""
    return log_normal(z.unsqueeze(-2), mean.unsqueeze(-3), logvar.unsqueeze(-3))


# -- MMD ---------------------------------------------------------------------------------
def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 for x (..., N, d), y (..., M, d) -> (..., N, M).

    Computed from differences (not the expanded dot-product form) so it is exactly 0 for
    equal points and has well-defined gradients there.
    """
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(-1)


def imq_kernel(x: torch.Tensor, y: torch.Tensor, cs: Sequence[float]) -> torch.Tensor:
    """Sum over C in ``cs`` of the inverse multiquadric kernel C / (C + ||x - y||^2).

    Tolstikhin et al. 2018, "Wasserstein Auto-Encoders", sec. 4 (IMQ kernel, several
    scales summed). x (..., N, d), y (..., M, d) -> (..., N, M).
    """
    d2 = squared_distances(x, y)
    return sum(c / (c + d2) for c in cs)


def wae_imq_scales(latent_dim: int, prior_var: float = 1.0,
                   scales: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)) -> list[float]:
    """Kernel constants C = s * 2 * D * sigma_z^2 for the scales s of Tolstikhin et al."""
    base = 2.0 * latent_dim * prior_var
    return [s * base for s in scales]


def mmd_unbiased(x: torch.Tensor, y: torch.Tensor, kernel) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between samples x (..., N, d) and y (..., M, d).

    Gretton et al. 2012, "A Kernel Two-Sample Test", eq. (3)/Lemma 6. For N == M the
    U-statistic over pairs i != j of h(i, j) = k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j)
    - k(x_j, y_i) is used (so MMD^2(x, x) is exactly 0); otherwise the within-sample
    sums exclude the diagonal and the cross term averages all N*M pairs (as in
    Tolstikhin et al. 2018, Algorithm 2). ``kernel(a, b) -> (..., N, M)``.
    """
    n, m = x.shape[-2], y.shape[-2]
    if n < 2 or m < 2:
        raise ValueError("mmd_unbiased needs at least 2 samples in x and y")
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)

    def off_diag_mean(k: torch.Tensor) -> torch.Tensor:
        s = k.shape[-1]
        total = k.sum((-2, -1)) - k.diagonal(dim1=-2, dim2=-1).sum(-1)
        return total / (s * (s - 1))

    if n == m:
        cross = off_diag_mean(kxy) + off_diag_mean(kxy.transpose(-2, -1))
    else:
        cross = 2.0 * kxy.mean((-2, -1))
    return off_diag_mean(kxx) + off_diag_mean(kyy) - cross


def mmd_imq(x: torch.Tensor, y: torch.Tensor, cs: Sequence[float]) -> torch.Tensor:
    """Unbiased MMD^2 with the summed-scale IMQ kernel (:func:`imq_kernel`)."""
    return mmd_unbiased(x, y, lambda a, b: imq_kernel(a, b, cs))


# -- FactorVAE ---------------------------------------------------------------------------
def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each latent dimension independently across the batch.

    Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1: samples of
    prod_d q(z_d). Each column of ``z`` (N, D) keeps its values (its marginal), only
    their assignment to rows changes. Out of place; vmap-friendly.
    """
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, -2, keys.argsort(dim=-2))


# -- DIP-VAE -----------------------------------------------------------------------------
def covariance(x: torch.Tensor) -> torch.Tensor:
    """Biased (1/N) covariance of the rows of x (..., N, D) -> (..., D, D)."""
    xc = x - x.mean(-2, keepdim=True)
    return xc.transpose(-2, -1) @ xc / x.shape[-2]


def dip_i_covariance(mean: torch.Tensor) -> torch.Tensor:
    """Cov_p(x)[mu(x)], the matrix DIP-VAE-I regularises (Kumar et al. 2018, eq. 6)."""
    return covariance(mean)


def dip_ii_covariance(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Cov_q(z)[z] = E_p(x)[Sigma(x)] + Cov_p(x)[mu(x)] (Kumar et al. 2018, eq. 7)."""
    return torch.diag_embed(logvar.exp().mean(-2)) + covariance(mean)


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_{i != j} C_ij^2, sum_i (C_ii - 1)^2): the off-diagonal and diagonal penalties.

    Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
    Unlabeled Observations", eqs. (6)-(7): the objective adds
    lambda_od * off + lambda_d * diag.
    """
    diag = cov.diagonal(dim1=-2, dim2=-1)
    off = cov.pow(2).sum((-2, -1)) - diag.pow(2).sum(-1)
    return off, (diag - 1.0).pow(2).sum(-1)
