"""Inception features for FID: InceptionV3 pool3 (2048-d) as in the standard PyTorch FID.

The network is pytorch-fid's ``InceptionV3`` (Seitzer, "pytorch-fid: FID score for PyTorch",
https://github.com/mseitzer/pytorch-fid, v0.3) with the port of the TensorFlow FID weights
(``pt_inception-2015-12-05-6726825d.pth``), the network Heusel et al. (NeurIPS 2017) defined
FID with. It comes with the optional extra ``fid`` (``pip install 'disbench[fid]'``: pytorch-fid
and torchvision); disbench never writes its own Inception.

Weights are looked up, in order, at an explicit ``weights=`` path, else in the torch hub
checkpoint cache (``torch.hub.get_dir()/checkpoints/``) where pytorch-fid itself downloads
them. They are never downloaded implicitly (``download=True`` fetches them into the hub
cache); a missing file raises :class:`~disbench.errors.DisbenchError` naming the file, its
URL and where to put it. They are loaded with ``torch.load(..., weights_only=True)``.

Preprocessing follows pytorch-fid: images in [0, 1] (uint8 is divided by 255), grayscale
repeated to 3 channels, bilinear resize to 299x299 (``align_corners=False``, no antialiasing),
then the network's own scaling to [-1, 1]. Features do not depend on the batch size (the
network is in eval mode; only float32 rounding can differ between batch sizes).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URL",
    "default_weights_path",
    "inception_features",
    "load_inception",
    "missing_requirements",
    "preprocess",
]

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
)
INSTALL_HINT = "pip install 'disbench[fid]'"
INPUT_SIZE = 299
FEATURE_DIM = 2048

_NETWORKS: dict[tuple[str, str], Any] = {}


def default_weights_path() -> Path:
    """Where the weights are looked for by default: the torch hub checkpoint cache."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME


def _missing_extra() -> str | None:
    try:
        import pytorch_fid.inception  # noqa: F401  (brings torchvision)
    except ImportError as exc:
        return (
            f"the Inception network needs the optional extra 'fid' (pytorch-fid and "
            f"torchvision; import failed: {exc}); install it with: {INSTALL_HINT}"
        )
    return None


def _resolve_weights(weights: str | Path | None, download: bool) -> tuple[Path | None, str | None]:
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_file():
            return path, None
        return None, (
            f"Inception weights file {path} (given as weights=) does not exist; it should be "
            f"{FID_WEIGHTS_NAME} from {FID_WEIGHTS_URL}"
        )
    path = default_weights_path()
    if path.is_file():
        return path, None
    if download:
        import torch

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(path), progress=True)
            return path, None
        except (OSError, RuntimeError, ValueError) as exc:  # offline, proxy, bad hash, ...
            reason = f"; the download failed ({exc})"
    else:
        reason = ""
    return None, (
        f"Inception weights {FID_WEIGHTS_NAME} not found{reason}: download {FID_WEIGHTS_URL} "
        f"and put it at {path} (the torch hub cache, $TORCH_HOME), or pass weights=PATH"
    )


def missing_requirements(weights: str | Path | None = None) -> list[str]:
    """What :func:`load_inception` would need and lacks (the ``fid`` extra, the weights file),
    one sentence each; empty when FID can be computed. Nothing is downloaded."""
    problems = [p for p in (_missing_extra(),) if p]
    _, weights_problem = _resolve_weights(weights, False)
    return problems + ([weights_problem] if weights_problem else [])


def load_inception(weights: str | Path | None = None, *, device: Any = None,
                   download: bool = False) -> Any:
    """pytorch-fid's InceptionV3 returning pool3 features (N, 2048), in eval mode.

    Parameters
    ----------
    weights : path, optional
        The ``pt_inception-2015-12-05-6726825d.pth`` file; default: the torch hub cache.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    download : bool
        Fetch the weights into the torch hub cache when they are missing (default False).

    Raises
    ------
    DisbenchError
        The ``fid`` extra is not installed (names the install command) or the weights are
        missing (names the file, its URL and where to put it).
    """
    from disbench.errors import DisbenchError, resolve_device

    problems = [p for p in (_missing_extra(),) if p]
    path, weights_problem = _resolve_weights(weights, download and not problems)
    if weights_problem:
        problems.append(weights_problem)
    if problems:
        raise DisbenchError("; and ".join(problems))
    device = resolve_device(device, "device")
    key = (str(Path(path).resolve()), str(device))
    if key not in _NETWORKS:
        _NETWORKS[key] = _build(path).to(device).eval()
    return _NETWORKS[key]


def _build(path: Path) -> Any:
    from unittest import mock

    import pytorch_fid.inception as pfi
    import torch
    from disbench.errors import DisbenchError

    # `url` unused here: the signature of load_state_dict_from_url, which this replaces
    def load_local(url: str, *args: Any, **kwargs: Any) -> dict:  # noqa: ARG001
        return torch.load(path, map_location="cpu", weights_only=True)

    try:
        # pytorch-fid builds its network and loads the weights through this module-level
        # name; pointing it at the local file keeps the package's exact network and avoids
        # any network access.
        with mock.patch.object(pfi, "load_state_dict_from_url", load_local):
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
                                  resize_input=False, normalize_input=True)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise DisbenchError(
            f"could not load the Inception weights {path}: {exc}; re-download "
            f"{FID_WEIGHTS_URL} to that place"
        ) from exc
    return _Pool3(net)


def _Pool3(net: Any) -> Any:
    """Wrap pytorch-fid's InceptionV3 so that it returns (N, 2048) instead of a list."""
    import torch

    class Pool3(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[0].flatten(1)

    return Pool3(net)


def preprocess(batch: Any, *, size: int = INPUT_SIZE) -> Any:
    """uint8 (0..255) or float ([0, 1]) images (N, C, H, W), C in {1, 3} -> float32
    (N, 3, size, size) in [0, 1]: grayscale repeated to 3 channels, bilinear resize
    (``align_corners=False``) as pytorch-fid does."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(batch)
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif t.is_floating_point():
        t = t.float()
        if t.numel() and (not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1):
            raise ValueError("images must be uint8 in 0..255 or float in [0, 1] without NaN")
    else:
        raise ValueError(f"images must be uint8 or float, got dtype {t.dtype}")
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise ValueError(
            f"images must have shape (N, C, H, W) with C = 1 or 3, got {tuple(t.shape)}"
        )
    if t.shape[-2:] != (size, size):
        # Before the grayscale expansion: bilinear acts per channel, so resizing one channel
        # and repeating it is identical to resizing three copies, at a third of the work.
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous()


def _batches(images: Any, batch_size: int) -> Iterator[Any]:
    for start in range(0, len(images), batch_size):
        yield np.asarray(images[start:start + batch_size]) if not hasattr(
            images, "detach") else images[start:start + batch_size]


def _extract(network: Any, images: Any, *, batch_size: int, device: Any,
             progress: bool) -> np.ndarray:
    """``network`` features (N, F) float64 of ``images``, batch by batch, in eval mode."""
    import torch

    n = len(images)
    was_training = network.training
    network.eval()
    out: np.ndarray | None = None
    start = 0
    it: Any = _batches(images, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=(n + batch_size - 1) // batch_size, desc="features", unit="batch")
    try:
        with torch.no_grad():
            for chunk in it:
                # The small raw batch goes to the device; resizing to 299 happens there.
                x = preprocess(torch.as_tensor(chunk).to(device))
                f = network(x).reshape(x.shape[0], -1).double().cpu().numpy()
                if out is None:
                    out = np.empty((n, f.shape[1]), dtype=np.float64)
                out[start:start + f.shape[0]] = f
                start += f.shape[0]
    finally:
        network.train(was_training)
    assert out is not None and start == n
    return out


def inception_features(
    images: Any,
    *,
    weights: str | Path | None = None,
    batch_size: int = 50,
    device: Any = None,
    network: Any = None,
    download: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """InceptionV3 pool3 features of images, as the standard PyTorch FID computes them.

    Parameters
    ----------
    images : array-like or torch.Tensor, shape (N, C, H, W), C = 1 or 3
        uint8 in 0..255 or float in [0, 1] (a dataset's ``images`` memmap works: batches are
        read lazily).
    weights : path, optional
        The weights file; default: ``torch.hub.get_dir()/checkpoints/`` + ``FID_WEIGHTS_NAME``.
    batch_size : int
        Images per forward pass; the features do not depend on it.
    device : torch.device or str, optional
        Default: the network's device (CUDA when available for the Inception network).
    network : torch.nn.Module, optional
        Any module mapping float (N, 3, 299, 299) images in [0, 1] to features (N, F) (or
        (N, F, 1, 1)); used instead of Inception, e.g. a small stand-in in tests. Scores from
        other networks are Frechet distances, not FID.
    download, progress : bool
        Fetch missing weights into the hub cache; show a tqdm bar.

    Returns
    -------
    numpy.ndarray, shape (N, 2048) (or (N, F)), float64
    """
    from ._device import module_device

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(images) == 0:
        raise ValueError("images is empty")
    if network is None:
        network = load_inception(weights, device=device, download=download)
    elif weights is not None:
        raise ValueError("give either weights= (for Inception) or network=, not both")
    return _extract(network, images, batch_size=batch_size,
                    device=module_device(network, device), progress=progress)
