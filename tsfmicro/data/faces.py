"""Face crops: MTCNN on the onset frame, the same square box cut from the apex frame.

Using one box for both frames keeps them aligned, so the difference frame (apex - onset)
shows the facial movement and not a shift of the crop.

Fallbacks when MTCNN finds no face, recorded per clip in ``crop_method``:
``precropped`` (the dataset's own pre-cropped frames, when that release is present),
else ``centre`` (the largest centred square).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from PIL import Image

DEFAULT_MARGIN = 0.1  # fraction of the detected box added on each side (keeps brows and chin)
DETECTION_SIDE = 320  # frames are shrunk to this longest side for detection: 4x faster, same box
MIN_FACE_SIZE = 40    # at DETECTION_SIDE; micro-expression faces fill a large part of the frame
MIN_PROBABILITY = 0.9

CROP_MTCNN, CROP_PRECROPPED, CROP_CENTRE = "mtcnn", "precropped", "centre"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels


class FaceDetector:
    """facenet-pytorch MTCNN, created on first use (its weights ship inside the package)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._mtcnn = None

    def _model(self):
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, min_face_size=MIN_FACE_SIZE, device=self.device)
        return self._mtcnn

    def detect(self, frames: list[np.ndarray]) -> list[list[tuple[Box, float]]]:
        """All faces (box, probability) per frame, above MIN_PROBABILITY, largest first.

        Frames of equal size go through MTCNN as one batch (MTCNN batches only equal sizes).
        """
        results: list[list[tuple[Box, float]]] = [[] for _ in frames]
        with _single_torch_thread():
            self._detect_by_size(frames, results)
        return results

    def _detect_by_size(self, frames: list[np.ndarray], results: list) -> None:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, frame in enumerate(frames):
            by_size.setdefault(frame.shape, []).append(index)
        for shape, indices in by_size.items():
            scale = min(1.0, DETECTION_SIDE / max(shape[:2]))
            small = np.stack([_shrink(frames[i], scale) for i in indices])
            boxes, probabilities = self._model().detect(small)
            for index, frame_boxes, frame_probabilities in zip(indices, boxes, probabilities):
                if frame_boxes is None:
                    continue
                faces = [(tuple(float(v) / scale for v in box), float(p))
                         for box, p in zip(frame_boxes, frame_probabilities) if p is not None and p >= MIN_PROBABILITY]
                results[index] = sorted(faces, key=lambda face: -_area(face[0]))

    def largest_faces(self, frames: list[np.ndarray]) -> list[Box | None]:
        """The largest face box per frame, or None where no face was found."""
        return [faces[0][0] if faces else None for faces in self.detect(frames)]


@contextmanager
def _single_torch_thread():
    """MTCNN's small convolutions gain nothing from several threads, and on shared cores
    several threads made detection 5x slower in our measurements; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shrink(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def square_box(box: Box, margin: float) -> Box:
    """The detected box grown by ``margin`` on each side and made square around its centre."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def centre_box(shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    side = min(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return x0, y0, x0 + side, y0 + side


def crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Cut ``box`` (may reach outside the frame: edges are repeated) and resize to size x size."""
    image = Image.fromarray(frame)
    x0, y0, x1, y1 = box
    # PIL's transform samples outside the frame as black; pad by edge repeat instead so a
    # face near the border gives no black band that the difference frame would not cancel.
    pad = int(max(0, -x0, -y0, x1 - frame.shape[1], y1 - frame.shape[0])) + 1
    if pad > 1:
        frame = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        image = Image.fromarray(frame)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    resized = image.resize((size, size), Image.BILINEAR, box=(x0, y0, x1, y1), reducing_gap=3.0)
    return np.asarray(resized)


def resize_whole(frame: np.ndarray, size: int) -> np.ndarray:
    """A pre-cropped frame is already the face: resize it whole."""
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR, reducing_gap=3.0))
