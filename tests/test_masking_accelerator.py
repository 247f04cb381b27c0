"""The C masker gives the same bytes as the pure-Python one, which stays the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws import masking


def test_the_c_masker_is_built_and_used_here():
    # This project's machines have gcc and the Python headers: a missing accelerator means
    # the build broke, not that it is optional here.
    assert masking.accelerated_apply_mask is not None
    assert masking.apply_mask is masking.accelerated_apply_mask


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask=st.binary(min_size=4, max_size=4),
    offset=st.integers(min_value=0, max_value=64),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_c_and_python_maskers_agree(data, mask, offset, kind):
    accelerated = masking.accelerated_apply_mask
    assert accelerated is not None
    expected = masking.python_apply_mask(data, mask, offset)
    assert accelerated(kind(data), mask, offset) == expected
    assert type(accelerated(kind(data), mask, offset)) is bytes


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096, 1 << 20])
def test_c_masker_round_trips_large_and_odd_sizes(size):
    accelerated = masking.accelerated_apply_mask
    assert accelerated is not None
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    masked = accelerated(data, b"\x01\x02\x03\x04")
    assert masked == masking.python_apply_mask(data, b"\x01\x02\x03\x04")
    assert accelerated(masked, b"\x01\x02\x03\x04") == data


@pytest.mark.parametrize("implementation", ["python_apply_mask", "accelerated_apply_mask"])
@pytest.mark.parametrize("mask", [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_both_maskers_refuse_a_mask_that_is_not_four_bytes(implementation, mask):
    function = getattr(masking, implementation)
    with pytest.raises(ValueError, match="a mask is 4 bytes"):
        function(b"payload", mask)
    with pytest.raises(ValueError, match="a mask is 4 bytes"):
        function(b"", mask)
