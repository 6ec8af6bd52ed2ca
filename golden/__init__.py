"""Golden models: the block number formats (MXINT and OCP MX minifloat) and the exact
integer arithmetic of every unit.

Free of simulator imports: this package is also the software quantiser users call.
"""

from .dot import DotResult, dot_product, dot_sum_range, mx_dot_product
from .format import SCALE_ROUNDINGS, MXFPFormat, MXIntFormat, parse_format
from .minifloat import ELEMENTS, ElementFormat
from .nn import MXLinear, quantize_model
from .quantize import MXFPTensor, MXIntTensor, dequantize, quantize, shared_exponent
from .rounding import ROUNDING_MODES, round_shift

__all__ = [
    "ELEMENTS",
    "ROUNDING_MODES",
    "SCALE_ROUNDINGS",
    "DotResult",
    "ElementFormat",
    "MXFPFormat",
    "MXFPTensor",
    "MXIntFormat",
    "MXIntTensor",
    "MXLinear",
    "dequantize",
    "dot_product",
    "dot_sum_range",
    "mx_dot_product",
    "parse_format",
    "quantize",
    "quantize_model",
    "round_shift",
    "shared_exponent",
]
