"""Golden models: the block number formats (MXINT and OCP MX minifloat) and the exact
integer arithmetic of every unit.

Free of simulator imports: this package is also the software quantiser users call.
"""

from .checkpoint import load_mxfp4, save_mxfp4
from .dot import DotResult, dot_product, dot_sum_range, mx_dot_product
from .format import SCALE_ROUNDINGS, MXFPFormat, MXIntFormat, parse_format
from .minifloat import ELEMENTS, ElementFormat
from .nn import LayerReport, MXConv, MXLinear, QuantizeReport, quantize_model
from .pack import pack, torch_view, unpack
from .quantize import MXFPTensor, MXIntTensor, dequantize, quantize, shared_exponent
from .rounding import ROUNDING_MODES, round_shift

__all__ = [
    "ELEMENTS",
    "ROUNDING_MODES",
    "SCALE_ROUNDINGS",
    "DotResult",
    "ElementFormat",
    "LayerReport",
    "MXFPFormat",
    "MXFPTensor",
    "MXIntFormat",
    "MXIntTensor",
    "MXConv",
    "MXLinear",
    "QuantizeReport",
    "dequantize",
    "dot_product",
    "dot_sum_range",
    "load_mxfp4",
    "mx_dot_product",
    "parse_format",
    "quantize",
    "pack",
    "quantize_model",
    "round_shift",
    "save_mxfp4",
    "shared_exponent",
    "torch_view",
    "unpack",
]
