"""tracker.geometry: the frame <-> crop matrices that travel with every crop."""
import math

import numpy as np
import pytest

from tracker.geometry import (CropBox, apply_affine, box_to_crop, crop_matrix, invert_affine,
                              landmarks_to_crop, to_frame, warp_crop)


@pytest.mark.parametrize("angle_deg", [0.0, 17.0, -33.0, 90.0, 180.0])
@pytest.mark.parametrize("side,size", [(200.0, 128), (37.5, 128), (640.0, 96), (128.0, 128)])
def test_crop_matrix_round_trips_through_to_frame(angle_deg, side, size):
    rng = np.random.default_rng(0)
    box = CropBox(cx=311.25, cy=97.5, side=side, angle=math.radians(angle_deg))
    m = crop_matrix(box, size)
    pts = rng.uniform(-50, 700, (68, 2))
    back = to_frame(apply_affine(pts, m), m)
    # float32 points: relative precision ~6e-8 of coordinates up to ~1e3.
    np.testing.assert_allclose(back, pts, atol=2e-4 * max(1.0, side / size))
    np.testing.assert_allclose(invert_affine(invert_affine(m)), m, atol=1e-9)


def test_crop_matrix_places_the_box_on_the_crop_edges():
    # The box's pixel edges [c - side/2, c + side/2] fill the crop's edges [-0.5, size - 0.5],
    # whatever the scale and roll; the centre lands on the crop centre.
    size = 64
    for angle in (0.0, 0.4, -1.1):
        box = CropBox(100.0, 50.0, 32.0, angle)
        m = crop_matrix(box, size)
        c, s = math.cos(angle), math.sin(angle)
        ex, ey = np.array([c, s]), np.array([-s, c])  # the crop's x and y axes in the frame
        centre = np.array([box.cx, box.cy])
        corners = np.stack([centre + (dx * ex + dy * ey) * box.side / 2
                            for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
        np.testing.assert_allclose(apply_affine(corners, m),
                                   [[-0.5, -0.5], [63.5, -0.5], [63.5, 63.5], [-0.5, 63.5]], atol=1e-4)
        np.testing.assert_allclose(apply_affine(centre[None], m), [[31.5, 31.5]], atol=1e-5)


def test_warp_crop_samples_where_the_matrix_says():
    # A single bright pixel in the frame appears where apply_affine maps its centre.
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[40, 70] = 255
    m = crop_matrix(CropBox(70.0, 40.0, 16.0, 0.0), 32)  # 2x zoom, centred on that pixel
    crop = warp_crop(frame, m, 32)
    x, y = apply_affine(np.array([[70.0, 40.0]]), m)[0]
    ys, xs = np.nonzero(crop[..., 0] > 0)
    w = crop[ys, xs, 0].astype(np.float64)
    assert (xs * w).sum() / w.sum() == pytest.approx(x, abs=0.05)
    assert (ys * w).sum() / w.sum() == pytest.approx(y, abs=0.05)


def test_landmarks_to_crop_is_the_upright_crop_rotated():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (68, 2)) * [40, 50]
    pts[36:42] += [-20, -10]  # eyes level in the face's own axes
    pts[42:48] += [20, -10]
    upright = landmarks_to_crop(pts + [200, 150], 1.4)
    angle = 0.5
    r = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rolled = landmarks_to_crop(pts @ r.T + [200, 150], 1.4)
    assert rolled.angle == pytest.approx(upright.angle + angle, abs=1e-9)
    assert rolled.side == pytest.approx(upright.side, rel=1e-9)
    # The same face points land on the same crop pixels, rolled or not.
    a = apply_affine(pts + [200, 150], crop_matrix(upright, 128))
    b = apply_affine(pts @ r.T + [200, 150], crop_matrix(rolled, 128))
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert box_to_crop((0, 0, 10, 20), 1.5).side == pytest.approx(30.0)
