"""Constants of the number formats dmrx quantizes to, named once (OCP Microscaling Formats v1.0).

An MX block is `block_size` elements of one element format sharing one E8M0 scale (an 8-bit
power-of-two exponent, bias 127, code 0xFF = NaN). The element formats' largest exponents
(`emax`) and largest magnitudes (`max_value`) are the spec's (tables in section 5.3):

    format        bits  E  M  bias  emax  max     special values
    mxfp8_e4m3     8    4  3   7     8    448     NaN only (S.1111.111)
    mxfp8_e5m2     8    5  2  15    15    57344   Inf and NaN (exponent 31)
    mxfp6_e3m2     6    3  2   3     4    28      none
    mxfp6_e2m3     6    2  3   1     2    7.5     none
    mxfp4_e2m1     4    2  1   1     2    6       none
    mxint8         8    8-bit two's complement with an implicit scale 2^-6: k/64, |k| <= 127
"""

from __future__ import annotations

from dataclasses import dataclass

#: E8M0 shared scale: exponent = code - 127, code 0xFF is NaN
SCALE_BIAS = 127
SCALE_NAN_CODE = 0xFF
SCALE_EXP_MIN = -127
SCALE_EXP_MAX = 127
SCALE_BITS = 8
DEFAULT_BLOCK_SIZE = 32


@dataclass(frozen=True)
class ElementFormat:
    """One MX element format.

    :param kind: 'fp' (sign, exponent, mantissa; subnormals at exponent field 0) or 'int'
    :param bits: storage bits per element
    :param ebits: exponent bits ('fp')
    :param mbits: mantissa bits ('fp'); for 'int' the fraction bits of the implicit scale
    :param bias: exponent bias ('fp')
    :param emax: exponent of the largest normal number (the spec's emax_elem)
    :param max_value: largest finite magnitude; values beyond it saturate to it
    """

    name: str
    kind: str
    bits: int
    ebits: int
    mbits: int
    bias: int
    emax: int
    max_value: float

    @property
    def min_normal_exp(self) -> int:
        """Exponent of the smallest normal number (subnormals share it)."""
        return 1 - self.bias

    @property
    def int_max(self) -> int:
        """Largest |k| of an 'int' element (k / 2**mbits)."""
        return (1 << (self.bits - 1)) - 1


ELEMENT_FORMATS: dict[str, ElementFormat] = {
    f.name: f for f in (
        ElementFormat("mxfp8_e4m3", "fp", 8, 4, 3, 7, 8, 448.0),
        ElementFormat("mxfp8_e5m2", "fp", 8, 5, 2, 15, 15, 57344.0),
        ElementFormat("mxfp6_e3m2", "fp", 6, 3, 2, 3, 4, 28.0),
        ElementFormat("mxfp6_e2m3", "fp", 6, 2, 3, 1, 2, 7.5),
        ElementFormat("mxfp4_e2m1", "fp", 4, 2, 1, 1, 2, 6.0),
        # MXINT8: k * 2^-6 with k in -127..127 (the spec reserves -128); emax 0, max 1 63/64
        ElementFormat("mxint8", "int", 8, 0, 6, 0, 0, 127.0 / 64.0),
    )
}
MX_FORMATS = tuple(ELEMENT_FORMATS)

#: short names the CLI accepts; MXFP6 means E2M3 (more mantissa suits bell-shaped weights)
MX_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3", "mxfp4": "mxfp4_e2m1"}


def element_format(fmt: str) -> ElementFormat:
    """:raises ValueError: `fmt` is not one of `MX_FORMATS` (or an alias)"""
    name = MX_ALIASES.get(fmt, fmt)
    if name not in ELEMENT_FORMATS:
        raise ValueError(f"fmt={fmt!r} is not an MX format: one of {list(MX_FORMATS)} or "
                         f"{list(MX_ALIASES)}")
    return ELEMENT_FORMATS[name]
