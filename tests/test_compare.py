"""Pure unit tests of the harness's comparison and case ids (no TensorFlow, no native code)."""

import numpy as np
import pytest

from parity.case import Case
from parity.compare import EPS32, Tolerance, compare

pytestmark = pytest.mark.harness

TOL = Tolerance(atol=1e-5, rtol=1e-4, k=8)


def test_identical_results_pass_with_zero_error():
    ref = np.array([[1.0, -2.0], [3.0, 0.5]])
    c = compare("grad:kernel", ref.astype(np.float32), ref, ref, TOL)
    assert c.passed and c.max_error == 0 and c.tolerance_used == 0


def test_elementwise_bound_is_relative_to_the_tensor_scale():
    ref = np.array([100.0, 1e-3])
    k32 = ref + np.array([0.0, 1e-3])  # Keras float32 itself is off by 1e-3 on the small one
    ok = ref + np.array([0.0, 9e-4])  # within atol*scale = 1e-5*100 = 1e-3
    bad = ref + np.array([0.0, 1.2e-3])
    assert compare("g", ok, ref, k32, TOL).passed
    c = compare("g", bad, ref, k32, TOL)
    assert not c.passed and c.worst_index == (1,)


def test_tensor_bound_holds_native_to_a_multiple_of_keras_error():
    ref = np.ones(4)
    k32 = ref + 1e-9  # Keras is almost exact
    native = ref + 5e-6  # within atol but > 8x Keras's error + 16 eps
    c = compare("g", native, ref, k32, TOL)
    assert c.tolerance_used < 1 and not c.passed
    assert c.tensor_bound == pytest.approx(8 * 1e-9 + 16 * EPS32, rel=1e-6)


def test_without_keras_float32_only_the_elementwise_bound_applies():
    """keras32=None (a test with the referee alone): the tensor-level bound, which
    would need Keras float32's error, is not applied; the elementwise one still is."""
    ref = np.ones(4)
    within = ref + 5e-5  # 50% of atol*scale + rtol*|ref| = 1.1e-4, far above 8x (0 + 16 eps)
    c = compare("g", within, ref, None, TOL)
    assert c.passed and c.tensor_bound == float("inf")
    assert "elementwise bound only" in c.describe() and "keras32" not in c.describe()
    assert not compare("g", ref, ref, ref, TOL).keras32_error  # given: the tensor bound applies
    assert not compare("g", within, ref, ref, TOL).passed
    beyond = compare("g", ref + 2e-4, ref, None, TOL)
    assert not beyond.passed and beyond.tolerance_used == pytest.approx(2e-4 / 1.1e-4)


def test_zeros_fail_where_the_reference_is_not_zero():
    ref = np.array([0.3, -0.2])
    assert not compare("g", np.zeros(2), ref, ref, TOL).passed


def test_shape_mismatch_and_missing_quantity_fail():
    ref = np.ones((2, 3))
    assert "shape" in compare("g", np.ones((3, 2)), ref, ref, TOL).problem
    assert not compare("g", None, ref, ref, TOL).passed


def test_non_finite_values_must_match_the_reference():
    ref = np.array([np.nan, np.inf, 1.0])
    assert compare("g", ref.copy(), ref, ref, TOL).passed
    assert not compare("g", np.array([np.nan, -np.inf, 1.0]), ref, ref, TOL).passed
    assert not compare("g", np.array([np.nan, np.inf, np.nan]), ref, ref, TOL).passed


def test_case_id_round_trips():
    case = Case(
        "gru",
        {"units": 3, "activation": "tanh", "reset_after": False},
        2,
        9,
        3,
        123,
        "large",
        {"kinks": True},
    )
    again = Case.from_id(case.id)
    assert again == case


@pytest.mark.parametrize("bad", ["", "dense", "dense?B=1", "dense?units=%ZZ"])
def test_malformed_case_ids_are_rejected(bad):
    with pytest.raises(ValueError):
        Case.from_id(bad)


def test_a_config_value_that_is_not_json_names_the_key():
    with pytest.raises(ValueError, match="'units' is not JSON"):
        Case.from_id("dense?units=large&B=1&T=1&rank=2&seed=0")


def test_the_ill_conditioned_label_only_where_the_sensitivity_explains_the_error():
    ref = np.array([1.0, 2.0])
    k32 = ref + 1e-8
    # A sensitivity as large as the error: the case passes by conditioning, labelled.
    moved = ref + np.array([0.0, 1e-3])
    c = compare("g", moved, ref, k32, TOL, sensitivity=np.array([0.0, 2e-4]))
    assert c.passed and c.by_conditioning is False  # set by check_case, which compares twice
    c.by_conditioning = True
    assert "ill-conditioned case, passes by conditioning" in c.describe()
    # A sensitivity a millionth of the error: a real failure, said to be well-conditioned.
    c = compare("g", moved, ref, k32, TOL, sensitivity=np.array([0.0, 1e-9]))
    assert not c.passed and "ill-conditioned" not in c.describe()
    assert "well-conditioned" in c.describe() and "1e+06x less than the error" in c.describe()
    # A passing quantity of a measured case carries no label at all.
    c = compare("g", ref + 1e-9, ref, k32, TOL, sensitivity=np.array([1e-9, 1e-9]))
    assert c.passed and "conditioned" not in c.describe()
