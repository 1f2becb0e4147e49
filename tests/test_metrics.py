"""ame.metrics: the harmonic mean of Base and New (PromptKD's HM), for scalars and arrays."""

import numpy as np

from ame.metrics import harmonic_mean


def test_hm_is_two_b_n_over_b_plus_n():
    assert harmonic_mean(80.0, 70.0) == 2 * 80 * 70 / 150
    assert harmonic_mean(50, 50) == 50.0


def test_hm_of_zero_and_zero_is_zero_not_nan():
    assert harmonic_mean(0, 0) == 0.0


def test_hm_works_elementwise_on_arrays():
    out = harmonic_mean(np.array([80.0, 0.0, 60.0]), np.array([70.0, 0.0, 0.0]))
    np.testing.assert_allclose(out, [2 * 80 * 70 / 150, 0.0, 0.0])
