"""The released preprocessing (authors' prepare_dataset.py), re-written verbatim in logic.

The oracle for tests/test_density.py and the baseline of benchmarks/bench_density.py.
"""
import numpy as np


def matlab_style_gauss2D(shape=(3, 3), sigma=0.5):
    m, n = [(ss - 1.0) / 2.0 for ss in shape]
    y, x = np.ogrid[-m : m + 1, -n : n + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    s = h.sum()
    h /= s if s != 0 else 1
    return h


def generate_density_map(shape, points, f_sz=15, sigma=4):
    im_density = np.zeros(shape[0:2])
    h, w = shape[0:2]
    for j in range(len(points)):
        H = matlab_style_gauss2D((f_sz, f_sz), sigma)
        x = np.minimum(w, np.maximum(1, np.abs(np.int32(np.floor(points[j, 0])))))
        y = np.minimum(h, np.maximum(1, np.abs(np.int32(np.floor(points[j, 1])))))
        x1 = x - f_sz // 2; y1 = y - f_sz // 2; x2 = x + f_sz // 2; y2 = y + f_sz // 2  # noqa: E702
        dx1 = dy1 = dx2 = dy2 = 0
        change_H = False
        if x1 < 1:
            dx1 = abs(x1) + 1; x1 = 1; change_H = True  # noqa: E702
        if y1 < 1:
            dy1 = abs(y1) + 1; y1 = 1; change_H = True  # noqa: E702
        if x2 > w:
            dx2 = x2 - w; x2 = w; change_H = True  # noqa: E702
        if y2 > h:
            dy2 = y2 - h; y2 = h; change_H = True  # noqa: E702
        x1h = 1 + dx1; y1h = 1 + dy1; x2h = f_sz - dx2; y2h = f_sz - dy2  # noqa: E702
        if change_H:
            H = matlab_style_gauss2D((y2h - y1h + 1, x2h - x1h + 1), sigma)
        im_density[y1 - 1 : y2, x1 - 1 : x2] += H
    return im_density
