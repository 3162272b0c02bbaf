"""Named index tuples of the 68-point markup (300-W / Multi-PIE), 0-based. Pure data.

"Left" and "right" are as seen in the image (the subject's right eye is LEFT_EYE),
the same convention as `tracker.geometry`. Contours run in markup order:

- JAW: right ear of the image (0) along the chin (8) to the other ear (16).
- LEFT_BROW / RIGHT_BROW: the upper edge of the brow, 5 points, image left to right
  (so LEFT_BROW runs outer -> inner end, RIGHT_BROW inner -> outer end).
- NOSE_BRIDGE: top (27) to tip (30); NOSE_LOWER: the nostril base, image left to right.
- LEFT_EYE / RIGHT_EYE: closed contour, 6 points, from the image-left corner along the
  upper lid, then back along the lower lid.
- LIPS_OUTER: closed, 12 points, left corner (48), upper lip to the right corner (54),
  lower lip back. LIPS_INNER: closed, 8 points, left corner (60), upper lip inner edge to
  the right corner (64), lower lip inner edge back.
"""

JAW = tuple(range(0, 17))
LEFT_BROW = tuple(range(17, 22))
RIGHT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_LOWER = tuple(range(31, 36))
LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))
LIPS_OUTER = tuple(range(48, 60))
LIPS_INNER = tuple(range(60, 68))

# Lip halves as open contours, corner to corner (the renderer draws each half as its own
# curve, so the mouth corners stay sharp): outer upper 48 -> 54, outer lower 54 -> 48,
# inner upper 60 -> 64, inner lower 64 -> 60.
UPPER_LIP_OUTER = tuple(range(48, 55))
LOWER_LIP_OUTER = tuple(range(54, 60)) + (48,)
UPPER_LIP_INNER = tuple(range(60, 65))
LOWER_LIP_INNER = tuple(range(64, 68)) + (60,)

# Upper lids, image left to right (corner, two lid points, corner).
LEFT_UPPER_LID = (36, 37, 38, 39)
RIGHT_UPPER_LID = (42, 43, 44, 45)
# Lower lids between the corners (the corners belong to the upper lids), image right to left.
LEFT_LOWER_LID = (40, 41)
RIGHT_LOWER_LID = (46, 47)
# Outer eye corners (the inter-ocular distance is measured between them).
LEFT_EYE_OUTER = 36
RIGHT_EYE_OUTER = 45

CHIN = 8
NOSE_TIP = 30

NUM_POINTS = 68

REGIONS = {
    "jaw": JAW,
    "left_brow": LEFT_BROW,
    "right_brow": RIGHT_BROW,
    "nose_bridge": NOSE_BRIDGE,
    "nose_lower": NOSE_LOWER,
    "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE,
    "lips_outer": LIPS_OUTER,
    "lips_inner": LIPS_INNER,
}

# Mean frontal face shape of the 300-W training faces here (AFW + HELEN train, |yaw| small,
# mirrored and averaged), in units of the inter-ocular distance: origin at the mid-point
# of the outer eye corners (36, 45), x along the eye line (p36 = (-0.5, 0), p45 = (0.5, 0)),
# y toward the chin. A template for synthetic faces and initial shapes.
MEAN_SHAPE = (
    (-0.790, 0.017), (-0.775, 0.227), (-0.747, 0.431), (-0.706, 0.631),
    (-0.629, 0.817), (-0.507, 0.978), (-0.356, 1.108), (-0.189, 1.212),
    (0.000, 1.241), (0.189, 1.212), (0.356, 1.108), (0.507, 0.978),
    (0.629, 0.817), (0.706, 0.631), (0.747, 0.431), (0.775, 0.227),
    (0.790, 0.017), (-0.667, -0.130), (-0.569, -0.226), (-0.425, -0.259),
    (-0.275, -0.242), (-0.133, -0.193), (0.133, -0.193), (0.275, -0.242),
    (0.425, -0.259), (0.569, -0.226), (0.667, -0.130), (0.000, -0.028),
    (0.000, 0.109), (0.000, 0.242), (0.000, 0.380), (-0.166, 0.473),
    (-0.085, 0.498), (0.000, 0.521), (0.085, 0.498), (0.166, 0.473),
    (-0.500, 0.000), (-0.410, -0.049), (-0.304, -0.048), (-0.210, 0.021),
    (-0.310, 0.037), (-0.416, 0.035), (0.210, 0.021), (0.304, -0.048),
    (0.410, -0.049), (0.500, 0.000), (0.416, 0.035), (0.310, 0.037),
    (-0.312, 0.721), (-0.197, 0.674), (-0.080, 0.649), (0.000, 0.668),
    (0.080, 0.649), (0.197, 0.674), (0.312, 0.721), (0.202, 0.833),
    (0.087, 0.882), (0.000, 0.890), (-0.087, 0.882), (-0.202, 0.833),
    (-0.265, 0.727), (-0.081, 0.714), (0.000, 0.723), (0.081, 0.714),
    (0.265, 0.727), (0.083, 0.782), (0.000, 0.792), (-0.083, 0.782),
)
