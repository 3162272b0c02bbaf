"""Helpers of the web tests: is the makeup on the lips, judged from the pixels."""
import cv2
import numpy as np

from tracker.regions import LIPS_INNER, LIPS_OUTER


def lip_mask(landmarks, shape) -> np.ndarray:
    """bool (H, W): inside the outer lip contour, outside the mouth opening."""
    pts = np.asarray(landmarks, np.float32)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(pts[list(LIPS_OUTER)]).astype(np.int32)], 1)
    cv2.fillPoly(mask, [np.round(pts[list(LIPS_INNER)]).astype(np.int32)], 0)
    return mask.astype(bool)


def mean_lab(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean CIELAB (L 0..100) of the masked pixels, float64 (3,)."""
    lab = cv2.cvtColor(image_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    return lab[mask].mean(axis=0).astype(np.float64)


def lip_change(raw_bgr: np.ndarray, out_bgr: np.ndarray, landmarks) -> float:
    """CIELAB distance (delta E 76) between the lips' mean colour in two images of one frame."""
    mask = lip_mask(landmarks, raw_bgr.shape)
    assert mask.sum() > 50, "the lip region is too small to judge"
    return float(np.linalg.norm(mean_lab(out_bgr, mask) - mean_lab(raw_bgr, mask)))


def corner_change(raw_bgr: np.ndarray, out_bgr: np.ndarray, size: int = 60) -> float:
    """Mean absolute difference in the bottom-left corner (background, far from the face)."""
    a = raw_bgr[-size:, :size].astype(np.float64)
    b = out_bgr[-size:, :size].astype(np.float64)
    return float(np.abs(a - b).mean())
