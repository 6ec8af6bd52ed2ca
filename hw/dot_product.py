"""MXINT block dot product."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.dot import dot_sum_range
from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, check_int

from .layouts import dot_result_layout, mxint_block_layout, range_shape
from .pipeline import StallPipeline
from .top import Top, operand_bits

__all__ = ["TOP", "MXIntDotProduct"]


class MXIntDotProduct(wiring.Component):
    """Dot product of two MXINT blocks, exact.

    For blocks ``a`` (``k`` mantissas ``P_a,i`` of ``a_bits``, code ``E_a``) and ``b``
    (``P_b,i`` of ``b_bits``, code ``E_b``) it computes

    * ``sum = sum_i P_a,i * P_b,i`` exactly, in the narrowest signed width that holds every
      possible result (:attr:`sum_shape`);
    * ``exponent = E_a + E_b``, ``exp_bits + 1`` bits;
    * ``nan = (E_a == 2**exp_bits - 1) | (E_b == 2**exp_bits - 1)``.

    The value is ``sum * 2**(exponent - 2*bias - (a_bits - 2) - (b_bits - 2))``; see
    :func:`golden.dot_product`, which this unit equals bit for bit.

    Structure: ``k`` registered multipliers feed a binary adder tree with a pipeline
    register after every ``levels_per_stage`` levels. Each tree node is only as wide as
    the range of the partial sum it carries.

    Throughput is one block pair per cycle. :attr:`latency` cycles pass from the transfer
    of an input pair to the output becoming valid. The pipeline stalls as a whole when
    the output is valid and not ready; ``a`` and ``b`` transfer together (each is ready
    only when the other is valid and the pipeline can accept).

    Parameters
    ----------
    a_bits, b_bits : int
        Mantissa widths of ``a`` and ``b`` including the sign, 2 to 24; may differ.
    exp_bits : int
        Shared exponent width, 2 to 8.
    block : int
        Elements per block ``k``, 1 to 1024.
    levels_per_stage : int
        Adder-tree levels between pipeline registers, at least 1 (default 2).

    Members
    -------
    a, b : ``In(stream.Signature(mxint_block_layout(...)))``
        Input blocks.
    o : ``Out(stream.Signature(dot_result_layout(...)))``
        Result: ``sum``, ``exponent``, ``nan``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_bits: int, b_bits: int, exp_bits: int = 8, block: int,
                 levels_per_stage: int = 2) -> None:
        self._a_bits = check_int("a_bits", a_bits, 2, MAX_MAN_BITS)
        self._b_bits = check_int("b_bits", b_bits, 2, MAX_MAN_BITS)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, MAX_EXP_BITS)
        self._block = check_int("block", block, 1, MAX_BLOCK)
        self._levels_per_stage = check_int("levels_per_stage", levels_per_stage, 1)
        self._sum_shape = range_shape(*dot_sum_range(a_bits, b_bits, block))
        super().__init__({
            "a": In(stream.Signature(mxint_block_layout(
                man_bits=a_bits, exp_bits=exp_bits, block=block))),
            "b": In(stream.Signature(mxint_block_layout(
                man_bits=b_bits, exp_bits=exp_bits, block=block))),
            "o": Out(stream.Signature(dot_result_layout(
                sum_shape=self._sum_shape, exp_bits=exp_bits))),
        })

    a_bits = property(lambda self: self._a_bits, doc="Mantissa width of ``a``.")
    b_bits = property(lambda self: self._b_bits, doc="Mantissa width of ``b``.")
    exp_bits = property(lambda self: self._exp_bits, doc="Shared exponent width.")
    block = property(lambda self: self._block, doc="Elements per block.")
    levels_per_stage = property(lambda self: self._levels_per_stage,
                                doc="Adder-tree levels between pipeline registers.")
    sum_shape = property(lambda self: self._sum_shape, doc="Shape of the exact sum.")

    @property
    def tree_levels(self) -> int:
        """Levels of the adder tree, ``ceil(log2(block))``."""
        return (self._block - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid: one for the
        multipliers plus one per group of ``levels_per_stage`` tree levels."""
        return 1 + -(-self.tree_levels // self._levels_per_stage)

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.latency

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.a, self.b], output=self.o, depth=depth)
        advance, register = pipe.advance, pipe.register

        # Stage 1: products, registered; exponent sum and NaN flag alongside.
        lo, hi = dot_sum_range(self._a_bits, self._b_bits, 1)
        nodes = []
        for i in range(self._block):
            p = Signal(range_shape(lo, hi), name=f"prod{i}")
            with m.If(advance):
                m.d.sync += p.eq(self.a.payload.mantissa[i] * self.b.payload.mantissa[i])
            nodes.append(p)
        nan_code = (1 << self._exp_bits) - 1
        exponent = register(self.a.payload.exponent + self.b.payload.exponent, "exp_s1")
        nan = register((self.a.payload.exponent == nan_code) |
                       (self.b.payload.exponent == nan_code), "nan_s1")

        # Adder tree: node width at level l is the range of a sum of 2**l products.
        for level in range(1, self.tree_levels + 1):
            shape = range_shape(lo << level, hi << level)
            nxt = []
            for j in range(0, len(nodes), 2):
                pair = nodes[j:j + 2]
                s = Signal(shape, name=f"sum_l{level}_{j // 2}")
                m.d.comb += s.eq(pair[0] + pair[1] if len(pair) == 2 else pair[0])
                nxt.append(s)
            nodes = nxt
            if level % self._levels_per_stage == 0 or level == self.tree_levels:
                nodes = [register(s, f"{s.name}_r") for s in nodes]
                exponent = register(exponent, f"exp_l{level}")
                nan = register(nan, f"nan_l{level}")

        m.d.comb += [
            self.o.payload.sum.eq(nodes[0]),
            self.o.payload.exponent.eq(exponent),
            self.o.payload.nan.eq(nan),
        ]
        return m


def _from_args(args) -> dict:
    a_bits, b_bits = operand_bits(args)
    return {
        "a_bits": a_bits,
        "b_bits": b_bits,
        "exp_bits": args.exp_bits,
        "block": args.block,
        "levels_per_stage": args.levels_per_stage,
    }


def _name(p: dict) -> str:
    name = f"mxint_dot_a{p['a_bits']}_w{p['b_bits']}_e{p['exp_bits']}_k{p['block']}"
    if p.get("levels_per_stage", 2) != 2:
        name += f"_l{p['levels_per_stage']}"
    return name


TOP = Top(
    key="dot",
    summary="MXINT block dot product: exact sum of products, exponent sum, NaN flag",
    component=MXIntDotProduct,
    from_args=_from_args,
    name=_name,
    options=((("--levels-per-stage",), {
        "type": int, "default": 2,
        "help": "dot/cast/linear: tree levels between pipeline registers (default: 2)"}),),
    flags={"levels_per_stage": "--levels-per-stage"},
)
