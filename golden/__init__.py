"""Golden models: the MXINT number format and the exact integer arithmetic of every unit.

Free of simulator imports: this package is also the software quantiser users call.
"""

from .dot import DotResult, dot_product, dot_sum_range
from .format import MXIntFormat
from .nn import MXLinear, quantize_model
from .quantize import MXIntTensor, dequantize, quantize, shared_exponent
from .rounding import ROUNDING_MODES, round_shift

__all__ = [
    "ROUNDING_MODES",
    "DotResult",
    "MXIntFormat",
    "MXIntTensor",
    "MXLinear",
    "dequantize",
    "dot_product",
    "dot_sum_range",
    "quantize",
    "quantize_model",
    "round_shift",
    "shared_exponent",
]
