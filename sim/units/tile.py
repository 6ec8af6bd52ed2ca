"""Testbench model of the weight-stationary tile (``--top tile``)."""

from __future__ import annotations

import torch

from golden.format import MXIntFormat
from golden.linear import elements, linear_fp32
from golden.quantize import quantize
from golden.tile import tile_bias, tile_blocks, tile_mx

from .common import (
    element_field,
    most_negative,
    plus_max,
    random_finite_blocks,
    special_codes,
    xw_operands,
)

__all__ = ["BIAS_SPECIALS", "TileModel", "tile_bias_words", "tile_biases", "tile_outputs",
           "tile_stimuli"]

#: float32 bias patterns that the adder must get right: signed zeros, the smallest and
#: largest subnormals of both signs, the smallest normal, 1.0, the largest finite values
#: (overflow with a result of the same sign), infinities, NaNs (canonical, with a payload,
#: negative).
BIAS_SPECIALS = (0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000,
                 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001,
                 0xFFC00123)


def tile_biases(gen: torch.Generator, y_bits: torch.Tensor) -> torch.Tensor:
    """float32 bias patterns (int64) for the ``R`` rows of a tile whose float32 results are
    ``y_bits`` ``(T, R)``: row by row, in turn, a special value (:data:`BIAS_SPECIALS`),
    minus token 0's result (an exact zero), that plus a few ulps (cancellation), a random
    pattern, a Gaussian value scaled like the results."""
    r = y_bits.shape[1]
    y0 = y_bits[0]
    scale = y0.to(torch.int32).view(torch.float32).abs().nan_to_num(0, 0, 0).mean().item()
    normal = (torch.randn(r, generator=gen) * (scale or 1.0)).view(torch.int32) \
        .to(torch.int64) & 0xFFFFFFFF
    special = torch.tensor(BIAS_SPECIALS)[torch.randint(0, len(BIAS_SPECIALS), (r,),
                                                        generator=gen)]
    neg = y0 ^ 0x80000000
    near = (neg + torch.randint(-3, 4, (r,), generator=gen)) & 0xFFFFFFFF
    pattern = torch.randint(0, 1 << 32, (r,), generator=gen, dtype=torch.int64)
    kind = torch.arange(r) % 5
    return torch.where(kind == 0, special, torch.where(kind == 1, neg, torch.where(
        kind == 2, near, torch.where(kind == 3, pattern, normal))))


def tile_bias_words(bias: torch.Tensor, lanes: int) -> list[dict]:
    """The ``b`` words of one tile's ``R`` bias patterns: one per group of ``P`` rows."""
    return [{"bits": bias[g * lanes:(g + 1) * lanes].tolist()}
            for g in range(bias.shape[0] // lanes)]


def tile_stimuli(w_man: torch.Tensor, w_exp: torch.Tensor, x_man: torch.Tensor,
                 x_exp: torch.Tensor, lanes: int, *, w_field: str = "mantissa",
                 x_field: str = "mantissa") -> tuple[list[dict], list[dict]]:
    """The ``w`` words and ``x`` blocks of one weight tile ``(R, nb, k)`` / ``(R, nb)`` and
    its ``T`` tokens ``(T, nb, k)`` / ``(T, nb)``: weights group by group, block by block;
    each token's blocks in order. The elements go in ``w_field``/``x_field``
    (``"codes"`` for a minifloat operand)."""
    rows, nb = w_exp.shape
    ws = [{w_field: w_man[g * lanes:(g + 1) * lanes, j].reshape(-1).tolist(),
           "exponent": w_exp[g * lanes:(g + 1) * lanes, j].tolist()}
          for g in range(rows // lanes) for j in range(nb)]
    xs = [{x_field: x_man[t, j].tolist(), "exponent": int(x_exp[t, j])}
          for t in range(x_exp.shape[0]) for j in range(nb)]
    return ws, xs


def tile_outputs(y, bits: torch.Tensor | None, mx: tuple | None, *, lanes: int,
                 block: int, output: str) -> list[dict]:
    """The ``o`` payloads of one tile from its golden results: ``y`` (:class:`AccumResult`,
    ``(T, R)``), ``bits`` (float32 patterns) and ``mx`` (mantissas ``(T, R/k, k)``,
    exponents ``(T, R/k)``), in the tile's output order."""
    out = []
    T, R = y.sum.shape
    if output == "mx":
        man, exp = mx
        per = max(1, lanes // block)  # blocks per transfer
        for t in range(T):
            for i in range(0, R // block, per):
                if per == 1:
                    out.append({"mantissa": man[t, i].tolist(), "exponent": int(exp[t, i])})
                else:
                    out.append({"mantissa": man[t, i:i + per].reshape(-1).tolist(),
                                "exponent": exp[t, i:i + per].tolist()})
        return out
    for t in range(T):
        for g in range(R // lanes):
            sl = slice(g * lanes, (g + 1) * lanes)
            if output == "fp32":
                out.append({"bits": bits[t, sl].tolist()})
            else:
                out.append({"sum": y.sum[t, sl].tolist(), "exponent": y.exponent[t, sl].tolist(),
                            "nan": [int(f) for f in y.nan[t, sl].tolist()]})
    return out


class TileModel:
    """Stimuli and expected results of :class:`hw.tile.MXIntTile`.

    A stimulus is a list of weight tiles, each with its ``T`` tokens. Directed tiles come
    first: a real ``torch.nn.Linear`` quantised with :func:`golden.quantize` and Gaussian
    tokens; all ``-2**(m-1)`` weights at exponent 0 with tokens of all ``-2**(m-1)`` and of
    ``+max``, at the top exponent; a NaN weight block (row 0's last) with a token holding a
    NaN block. Then ``ceil(n / T)`` random tiles with full-range mantissas and exponents
    (NaN codes included), every other one with exponents drawn near each other so that
    alignment keeps information. A minifloat operand (``x_element``/``w_element``) takes
    element codes: its corner is all -max codes, its random blocks those of
    :class:`sim.units.linear.LinearModel` (finite codes of both signs, now and then an
    E4M3 NaN or an E5M2 infinity or NaN code).

    With ``blocks_per_cycle`` ``B`` above 1 the expectation sums each row in ``B`` partial
    sums (:func:`golden.tile.tile_blocks`); the stimuli do not change.

    With ``bias="fp32"`` each tile has ``R`` float32 biases on ``b``
    (:func:`tile_biases`) and the expectation is :func:`golden.tile.tile_bias` of the
    float32 results.
    """

    inputs = ("x", "w")
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        from hw.accumulator import DEFAULT_GUARD_BITS, resolve_acc_width

        self.p = dict(params)
        ops, self.fmt_x, self.fmt_w = xw_operands(params)
        self.x_field, self.w_field = element_field(self.fmt_x), element_field(self.fmt_w)
        self.k = params["block"]
        self.k_len = params.get("k_len") or 4 * self.k
        self.nb = -(-self.k_len // self.k)
        self.rows, self.lanes = params["rows"], params.get("lanes", 1)
        self.tokens = params.get("tokens", 1)
        self.blocks_per_cycle = params.get("blocks_per_cycle", 1)
        self.output = params.get("output", "accum")
        self.bias = params.get("bias", "none")
        if self.bias != "none":
            self.inputs = ("x", "w", "b")
        self.fmt_o = MXIntFormat(params.get("out_bits") or params["x_bits"],
                                 params.get("exp_bits", 8), self.k) \
            if self.output == "mx" else None
        self.guard_bits = params.get("guard_bits", DEFAULT_GUARD_BITS)
        self.acc_width = resolve_acc_width(block=self.k, guard_bits=self.guard_bits,
                                           acc_width=params.get("acc_width"), **ops)

    def _tiles(self, gen: torch.Generator, n: int) -> list[tuple]:
        fx, fw, nb, k, R, T = self.fmt_x, self.fmt_w, self.nb, self.k, self.rows, self.tokens
        out = []
        layer = torch.nn.Linear(self.k_len, R, bias=False)
        with torch.no_grad():
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1)
                               / self.k_len ** 0.5)
        wq = quantize(layer.weight.detach(), fw)
        xq = quantize(torch.randn(T, self.k_len, generator=gen), fx)
        out.append((elements(wq), wq.exponent, elements(xq), xq.exponent))

        def full(shape, value):
            return torch.full(shape, value, dtype=torch.int64)

        x_m = full((T, nb, k), most_negative(fx))
        x_m[1::2] = plus_max(fx)
        out.append((full((R, nb, k), most_negative(fw)), full((R, nb), fw.max_code),
                    x_m, full((T, nb), fx.max_code)))
        w_m, w_e = random_finite_blocks(gen, fw, R * nb, nan_rate=0.0)
        w_e = w_e.reshape(R, nb).clone()
        w_e[0, -1] = fw.nan_code
        x_m, x_e = random_finite_blocks(gen, fx, T * nb, nan_rate=0.0)
        x_e = x_e.reshape(T, nb).clone()
        x_e[-1, 0] = fx.nan_code
        w_m, x_m = w_m.reshape(R, nb, k).clone(), x_m.reshape(T, nb, k).clone()
        if special_codes(fw) and R > 1:  # a minifloat's infinity or NaN code in row 1
            w_m[1, 0, 0] = special_codes(fw)[0]
        if special_codes(fx):            # and in token 0
            x_m[0, -1, 0] = special_codes(fx)[-1]
        out.append((w_m, w_e, x_m, x_e))
        for i in range(-(-n // T)):
            w_m, w_e = random_finite_blocks(gen, fw, R * nb, nan_rate=0.02)
            x_m, x_e = random_finite_blocks(gen, fx, T * nb, nan_rate=0.02)
            if i % 2:  # exponents close together: alignment keeps information
                base = int(torch.randint(0, fw.max_code - 3, (1,), generator=gen))
                w_e = base + torch.randint(0, 4, w_e.shape, generator=gen)
                x_e = base + torch.randint(0, 4, x_e.shape, generator=gen)
            out.append((w_m.reshape(R, nb, k), w_e.reshape(R, nb), x_m.reshape(T, nb, k),
                        x_e.reshape(T, nb)))
        return out

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        xs, ws, bs = [], [], []
        for w_m, w_e, x_m, x_e in self._tiles(gen, n):
            w, x = tile_stimuli(w_m, w_e, x_m, x_e, self.lanes, w_field=self.w_field,
                                x_field=self.x_field)
            ws += w
            xs += x
            if self.bias != "none":
                bs += tile_bias_words(tile_biases(gen, self._fp32(w_m, w_e, x_m, x_e)),
                                      self.lanes)
        return {"x": xs, "w": ws, **({"b": bs} if self.bias != "none" else {})}

    def _fp32(self, w_m, w_e, x_m, x_e) -> torch.Tensor:
        """The float32 results (before a bias) of one tile, ``(T, R)``."""
        y = tile_blocks(w_m, w_e, x_m, x_e, self.fmt_w, self.fmt_x,
                        guard_bits=self.guard_bits, acc_width=self.acc_width,
                        blocks_per_cycle=self.blocks_per_cycle)
        return linear_fp32(y, self.fmt_w, self.fmt_x, guard_bits=self.guard_bits)

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        P, nb, k, R, T = self.lanes, self.nb, self.k, self.rows, self.tokens
        D = R // P * nb
        xs, ws = stimuli["x"], stimuli["w"]
        out = []
        for tile in range(len(ws) // D):
            w = ws[tile * D:(tile + 1) * D]
            x = xs[tile * T * nb:(tile + 1) * T * nb]
            w_m = torch.tensor([v[self.w_field] for v in w]).reshape(R // P, nb, P, k) \
                .transpose(1, 2).reshape(R, nb, k)
            w_e = torch.tensor([v["exponent"] for v in w]).reshape(R // P, nb, P) \
                .transpose(1, 2).reshape(R, nb)
            x_m = torch.tensor([v[self.x_field] for v in x]).reshape(T, nb, k)
            x_e = torch.tensor([v["exponent"] for v in x]).reshape(T, nb)
            y = tile_blocks(w_m, w_e, x_m, x_e, self.fmt_w, self.fmt_x,
                            guard_bits=self.guard_bits, acc_width=self.acc_width,
                            blocks_per_cycle=self.blocks_per_cycle)
            bits = mx = None
            if self.output != "accum":
                bits = linear_fp32(y, self.fmt_w, self.fmt_x, guard_bits=self.guard_bits)
            if self.bias != "none":
                b = stimuli["b"][tile * (R // P):(tile + 1) * (R // P)]
                bits = tile_bias(bits, torch.tensor([v for word in b for v in word["bits"]]))
            if self.output == "mx":
                mx = tile_mx(bits, self.fmt_o)
            out += tile_outputs(y, bits, mx, lanes=P, block=k, output=self.output)
        return {"o": out}
