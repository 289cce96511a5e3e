"""The optical-flow input of STSTNet, OFF-ApexNet and HTNet: onset -> apex TV-L1 flow and strain.

Each clip's input is three 28 x 28 maps, ``(3, 28, 28)`` float32 in [0, 1], in this order:

* ``u``: the horizontal flow (pixels, +x = right), ``v``: the vertical flow (+y = down), from the
  onset crop to the apex crop: the apex at ``p + (u, v)`` looks like the onset at ``p``;
* ``strain``: the optical-strain magnitude of that flow.

How, step by step (the facts: shared/reference/baselines.md section 4; STSTNet's own flow,
strain and normalisation code is not public, so none of the upstreams can be matched exactly):

1. Both face crops (the ones TSFmicro reads, from the face-crop cache) become grey: ITU-R 601
   luma (``cv2.cvtColor`` RGB -> GRAY), float32.
2. As the IPOL TV-L1 code does: both frames jointly min-max normalised to [0, 255] (handed to
   OpenCV as [0, 1] floats, which it scales by 255 itself), then a Gaussian pre-smoothing of
   sigma 0.8.
3. TV-L1 (Zach-Pock-Bischof dual TV-L1) with OpenCV contrib's ``DualTVL1OpticalFlow``, set as close
   to the IPOL defaults as OpenCV allows (:class:`FlowSettings`): tau 0.25, lambda 0.15, theta 0.3,
   5 warps, epsilon 0.01, zoom factor 0.5, as many scales as IPOL's cap allows (the coarsest level
   at least 16 px), 30 x 10 = 300 iterations per warp, no median filter (IPOL has none). Not
   bit-identical to IPOL (the solvers differ in details); an approximation, not verified numerically.
4. Strain at the crop's resolution, the textbook magnitude of the strain tensor
   eps = 1/2 (grad u + grad u^T):  sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2)  (STSTNet paper eqs. 5-7).
   Gradient operator: central differences in pixel units (``numpy.gradient``; one-sided first
   differences on the border rows and columns). It is exact for a linear flow field.
5. Each map resized to 28 x 28 with ``cv2.INTER_AREA`` (pixel-area averaging, an anti-aliased
   shrink; STSTNet does not say which method it used).
6. Per image and per channel min-max scaled to [0, 1] (a constant map becomes 0), AFTER the resize:
   the released STSTNet images are 28 x 28 PNGs in which every channel spans exactly 0..255, which a
   min-max before an averaging resize would not give. Their 8-bit quantisation is not copied.

Not ImageNet-normalised (it is not a photograph), and not flipped or rotated by the training
augmentation in any meaningful way (a flip would have to negate ``u``): the baselines' recipes do
not augment.

Cache: beside the face-crop cache the crops came from (``PreparedData.cache_path``), one file per
:class:`FlowSettings` (``<crop cache stem>_flow_<key>.npz``, key = sha256 of the settings and
:data:`FLOW_FORMAT`). Inside, each clip's maps are filed under a hash of its onset and apex crops'
bytes, so any view of the crops (a task, the automatic apex, moved frames, a cross-dataset join)
finds what was computed before and only new pairs are computed (then added to the file).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path

FLOW_FORMAT = 2  # 2: frames handed to OpenCV in [0, 1] (1 gave it 0..255, which it scaled again); bump when the procedure above changes (not a setting): old flow files are not reused
FLOW_SIZE = 28  # the side of the maps, as STSTNet's released images
CHANNELS = ("u", "v", "strain")


@dataclass(frozen=True)
class FlowSettings:
    """Everything the flow maps depend on besides the crops; all of it enters the cache key.

    Defaults: the IPOL TV-L1 code's (tau, lambda, theta, warps, epsilon, zoom factor 0.5, the
    coarsest scale >= 16 px, 300 iterations per warp, pre-smoothing sigma 0.8, no median filter).
    """

    tau: float = 0.25
    lambda_: float = 0.15  # the data term's weight (OpenCV's setLambda; ``lambda`` is reserved)
    theta: float = 0.3
    warps: int = 5
    epsilon: float = 0.01
    scale_step: float = 0.5  # IPOL's zfactor
    max_scales: int = 100  # IPOL's nscales; capped so the coarsest level is >= min_coarsest px
    min_coarsest: int = 16
    inner_iterations: int = 30  # OpenCV splits IPOL's up-to-300 iterations per warp as inner x outer
    outer_iterations: int = 10
    median_filtering: int = 1  # 1: none (IPOL has no median filter); OpenCV's default is 5
    gamma: float = 0.0
    presmooth_sigma: float = 0.8
    size: int = FLOW_SIZE
    resize: str = "area"  # cv2.INTER_AREA
    gradient: str = "central"  # numpy.gradient: central differences, one-sided at the border

    def scales(self, height: int, width: int) -> int:
        """IPOL's cap: N = 1 + log(hypot(W, H) / 16) / log(1 / zfactor), at most ``max_scales``, at least 1."""
        levels = 1 + math.log(math.hypot(width, height) / self.min_coarsest) / math.log(1 / self.scale_step)
        return max(1, min(self.max_scales, int(levels)))

    def key(self) -> str:
        return hashlib.sha256(json.dumps({"format": FLOW_FORMAT, **asdict(self)}, sort_keys=True).encode()).hexdigest()


DEFAULT_SETTINGS = FlowSettings()


def _solver(settings: FlowSettings, height: int, width: int):
    try:
        import cv2
        create = cv2.optflow.DualTVL1OpticalFlow_create
    except (ImportError, AttributeError):
        raise RuntimeError("the flow input needs OpenCV's contrib modules (cv2.optflow): "
                           "pip install --force-reinstall --no-deps opencv-contrib-python-headless "
                           "(the version pyproject.toml pins)") from None
    solver = create()
    solver.setTau(settings.tau)
    solver.setLambda(settings.lambda_)
    solver.setTheta(settings.theta)
    solver.setWarpingsNumber(settings.warps)
    solver.setEpsilon(settings.epsilon)
    solver.setScaleStep(settings.scale_step)
    solver.setScalesNumber(settings.scales(height, width))
    solver.setInnerIterations(settings.inner_iterations)
    solver.setOuterIterations(settings.outer_iterations)
    solver.setMedianFiltering(settings.median_filtering)
    solver.setGamma(settings.gamma)
    solver.setUseInitialFlow(False)
    return solver


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image.astype(np.float32)


def tvl1_flow(onset: np.ndarray, apex: np.ndarray, settings: FlowSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """TV-L1 flow from ``onset`` to ``apex`` (uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``), at their
    resolution: float32 ``(H, W, 2)``, ``[..., 0]`` = u (x, right), ``[..., 1]`` = v (y, down)."""
    import cv2

    first, second = _grey(onset), _grey(apex)
    if first.shape != second.shape:
        raise ValueError(f"onset and apex differ in size: {first.shape} vs {second.shape}")
    low, high = min(first.min(), second.min()), max(first.max(), second.max())
    # IPOL's image_normalization (both frames jointly to [0, 255]), written as [0, 1]: OpenCV's
    # solver multiplies a float image by 255 itself (a float image already in 0..255 becomes
    # 0..65025, and the flow blows up to hundreds of pixels)
    first, second = (((image - low) / (high - low) if high > low else image * 0.0) for image in (first, second))
    if settings.presmooth_sigma > 0:
        first, second = (cv2.GaussianBlur(image, (0, 0), settings.presmooth_sigma) for image in (first, second))
    solver = _solver(settings, *first.shape)
    return solver.calc(np.ascontiguousarray(first), np.ascontiguousarray(second), None)


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The strain magnitude sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2) of the flow field (u, v),
    derivatives by central differences in pixel units (``numpy.gradient``)."""
    u_y, u_x = np.gradient(np.asarray(u, dtype=np.float64))  # axis 0 = rows = y, axis 1 = columns = x
    v_y, v_x = np.gradient(np.asarray(v, dtype=np.float64))
    return np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)


def normalise_maps(maps: np.ndarray, size: int = FLOW_SIZE, resize: str = "area") -> np.ndarray:
    """``(C, H, W)`` maps -> ``(C, size, size)`` float32: each resized (``cv2.INTER_AREA``), then
    min-max scaled to [0, 1] on its own (a constant map becomes 0)."""
    import cv2

    if resize != "area":
        raise ValueError(f"unknown resize {resize!r}; the flow input knows 'area'")
    out = np.empty((len(maps), size, size), np.float32)
    for channel, image in enumerate(maps):
        small = cv2.resize(np.asarray(image, np.float32), (size, size), interpolation=cv2.INTER_AREA)
        low, high = float(small.min()), float(small.max())
        out[channel] = (small - low) / (high - low) if high > low else 0.0
    return out


def flow_image(onset: np.ndarray, apex: np.ndarray, settings: FlowSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """One clip's input: ``(3, size, size)`` float32 in [0, 1], channels u, v, strain (module docstring)."""
    if settings.gradient != "central":
        raise ValueError(f"unknown gradient {settings.gradient!r}; the flow input knows 'central'")
    flow = tvl1_flow(onset, apex, settings)
    u, v = flow[..., 0], flow[..., 1]
    return normalise_maps(np.stack([u, v, optical_strain(u, v)]), settings.size, settings.resize)


def pair_hash(onset: np.ndarray, apex: np.ndarray) -> str:
    """What a clip's flow is filed under: its two crops' shapes and bytes."""
    digest = hashlib.sha256(f"{onset.shape}|{apex.shape}".encode())
    digest.update(np.ascontiguousarray(onset).tobytes())
    digest.update(np.ascontiguousarray(apex).tobytes())
    return digest.hexdigest()


def flow_cache_path(crop_cache: Path, settings: FlowSettings = DEFAULT_SETTINGS) -> Path:
    """The flow file beside the face-crop cache ``crop_cache``, for ``settings``."""
    crop_cache = Path(crop_cache)
    return crop_cache.with_name(f"{crop_cache.stem}_flow_{settings.key()[:16]}.npz")


def flow_inputs(data, settings: FlowSettings = DEFAULT_SETTINGS, progress: bool = False) -> np.ndarray:
    """The flow input of every clip of ``data`` (a PreparedData: its ``onset`` and ``apex`` crops),
    row-aligned with it: float32 ``(N, 3, size, size)``. Read from, and added to, the flow file
    beside ``data.cache_path``; computed in memory only when the data has no cache file."""
    from tqdm.auto import tqdm

    hashes = [pair_hash(onset, apex) for onset, apex in zip(data.onset, data.apex)]
    path = flow_cache_path(data.cache_path, settings) if data.cache_path is not None else None
    known = _read_flow_file(path) if path is not None else {}
    missing = [row for row, name in enumerate(hashes) if name not in known]
    if missing:
        for row in tqdm(missing, desc=f"TV-L1 flow {data.dataset}", unit="clip", disable=not progress):
            known[hashes[row]] = flow_image(data.onset[row], data.apex[row], settings)
        if path is not None:
            _write_flow_file(path, known, settings)
    empty = np.zeros((0, 3, settings.size, settings.size), np.float32)
    return np.stack([known[name] for name in hashes]) if hashes else empty


def _read_flow_file(path: Path) -> dict[str, np.ndarray]:
    """The maps a flow file holds, by pair hash; {} when it is missing or damaged (then rebuilt)."""
    import zipfile

    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            return dict(zip(stored["pairs"].tolist(), stored["flow"]))
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, OSError):
        return {}  # rebuilt from the crops, which the face-crop cache holds


def _write_flow_file(path: Path, maps: dict[str, np.ndarray], settings: FlowSettings) -> None:
    # Another process may have added pairs meanwhile (Ray workers): keep theirs too.
    maps = {**_read_flow_file(path), **maps}
    names = sorted(maps)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, pairs=np.array(names, dtype=str),
                 flow=np.stack([maps[name] for name in names]).astype(np.float32),
                 settings=np.array(json.dumps({"format": FLOW_FORMAT, **asdict(settings)}, sort_keys=True)))
