"""Testbench model of the matrix-vector engine (``--top linear``)."""

from __future__ import annotations

import torch

from golden.linear import elements, linear_blocks, linear_fp32
from golden.quantize import quantize

from .common import (
    element_field,
    most_negative,
    plus_max,
    random_finite_blocks,
    special_codes,
    xw_operands,
)

__all__ = ["LinearModel"]


class LinearModel:
    """Stimuli and expected results of :class:`hw.linear.MXIntLinear`.

    A stimulus is a list of matrix-vector products. Each one sends, per group of ``P``
    rows, the ``nb`` activation blocks on ``x`` and the matching weight blocks on ``w``.
    Directed products come first: a real ``torch.nn.Linear`` quantised with
    :func:`golden.quantize`, all ``-2**(m-1)``, all ``+max`` at the top exponent, the
    smallest exponent, and NaN weight and activation blocks. Then ``n`` random products
    with full-range mantissas and exponents (NaN codes included), every other one with
    exponents drawn near each other so that alignment keeps information.

    A minifloat operand (``x_element``/``w_element``) takes element codes instead of
    mantissas: its corners are all +max and all -max codes, random blocks draw finite codes
    of both signs uniformly with, in one block in 25, one special code (E4M3 NaN, E5M2
    infinity or NaN), and directed products put the format's infinities and a NaN of each
    sign in the weight rows (one per row) and, one product each, in an activation block.

    The expectation follows the ``output`` parameter: ``(sum, exponent, nan)`` per lane
    (``"accum"``, the default) or the float32 patterns of those results (``"fp32"``).
    """

    inputs = ("x", "w")
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.p = dict(params)
        operands, self.fmt_x, self.fmt_w = xw_operands(params)
        self.nb = -(-params["k_len"] // params["block"])
        self.rows, self.lanes = params["rows"], params["lanes"]
        self.output = params.get("output", "accum")
        from hw.accumulator import (
            DEFAULT_ALIGN,
            DEFAULT_GUARD_BITS,
            partial_sums,
            resolve_acc_width,
        )

        self.guard_bits = params.get("guard_bits", DEFAULT_GUARD_BITS)
        self.acc_width = resolve_acc_width(
            block=params["block"], guard_bits=self.guard_bits,
            acc_width=params.get("acc_width"), **operands)
        self.partial_sums = partial_sums(params.get("align", DEFAULT_ALIGN))

    def torch_linear_case(self, seed: int) -> tuple:
        """Quantised weights and input of a ``torch.nn.Linear(K, N)`` (seeded), and the
        float reference ``y = W x`` (no bias)."""
        gen = torch.Generator().manual_seed(seed)
        layer = torch.nn.Linear(self.p["k_len"], self.rows, bias=False)
        with torch.no_grad():
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1)
                               / self.p["k_len"] ** 0.5)
        x = torch.randn(self.p["k_len"], generator=gen)
        wq, xq = quantize(layer.weight.detach(), self.fmt_w), quantize(x, self.fmt_x)
        with torch.no_grad():
            ref = layer(x)
        return wq, xq, ref

    def _products(self, gen: torch.Generator, n: int) -> list[tuple]:
        fx, fw, nb, k, rows = self.fmt_x, self.fmt_w, self.nb, self.p["block"], self.rows
        out = []
        wq, xq, _ = self.torch_linear_case(int(torch.randint(1 << 30, (1,), generator=gen)))
        out.append((elements(wq), wq.exponent, elements(xq),
                    xq.exponent))

        def full(shape, value):
            return torch.full(shape, value, dtype=torch.int64)

        neg_x, neg_w = most_negative(fx), most_negative(fw)
        out.append((full((rows, nb, k), neg_w), full((rows, nb), 0),
                    full((nb, k), neg_x), full((nb,), fx.max_code)))
        out.append((full((rows, nb, k), plus_max(fw)), full((rows, nb), fw.max_code),
                    full((nb, k), plus_max(fx)), full((nb,), fx.max_code)))
        w_m, w_e = random_finite_blocks(gen, fw, rows * nb, nan_rate=0.0, special_rate=0.0)
        x_m, x_e = random_finite_blocks(gen, fx, nb, nan_rate=0.0, special_rate=0.0)
        w_e = w_e.reshape(rows, nb).clone()
        w_e[0, -1] = fw.nan_code  # a NaN weight block in row 0
        out.append((w_m.reshape(rows, nb, k), w_e, x_m, torch.zeros_like(x_e)))
        x_e2 = x_e.clone()
        x_e2[0] = fx.nan_code  # a NaN activation block poisons every row
        out.append((w_m.reshape(rows, nb, k), torch.zeros_like(w_e), x_m, x_e2))
        if special_codes(fw):
            # The format's infinities and a NaN of each sign, one per weight row.
            w_s = w_m.reshape(rows, nb, k).clone()
            for r, code in enumerate(special_codes(fw)[:rows]):
                w_s[r, r % nb, r % k] = code
            out.append((w_s, w_e.clamp(max=fw.max_code), x_m, x_e))
        for code in special_codes(fx):
            # Each in the activations' last block: every row is NaN.
            x_s = x_m.clone()
            x_s[-1, 0] = code
            out.append((w_m.reshape(rows, nb, k), w_e.clamp(max=fw.max_code), x_s, x_e))
        for i in range(n):
            w_m, w_e = random_finite_blocks(gen, fw, rows * nb, nan_rate=0.02)
            x_m, x_e = random_finite_blocks(gen, fx, nb, nan_rate=0.02)
            if i % 2:  # exponents close together: alignment keeps information
                base = int(torch.randint(0, fw.max_code - 3, (1,), generator=gen))
                w_e = base + torch.randint(0, 4, w_e.shape, generator=gen)
                x_e = base + torch.randint(0, 4, x_e.shape, generator=gen)
            out.append((w_m.reshape(rows, nb, k), w_e.reshape(rows, nb), x_m, x_e))
        return out

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        xs, ws = [], []
        P = self.lanes
        for w_m, w_e, x_m, x_e in self._products(gen, n):
            for g in range(self.rows // P):
                for j in range(self.nb):
                    xs.append({element_field(self.fmt_x): x_m[j].tolist(),
                               "exponent": int(x_e[j])})
                    ws.append({element_field(self.fmt_w): w_m[g * P:(g + 1) * P, j]
                               .reshape(-1).tolist(),
                               "exponent": w_e[g * P:(g + 1) * P, j].tolist()})
        return {"x": xs, "w": ws}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        P, nb, k = self.lanes, self.nb, self.p["block"]
        xs, ws = stimuli["x"], stimuli["w"]
        out = []
        for start in range(0, len(xs), nb):
            fx, fw = element_field(self.fmt_x), element_field(self.fmt_w)
            x_m = torch.tensor([x[fx] for x in xs[start:start + nb]])
            x_e = torch.tensor([x["exponent"] for x in xs[start:start + nb]])
            w_m = torch.tensor([w[fw] for w in ws[start:start + nb]]) \
                .reshape(nb, P, k).transpose(0, 1)
            w_e = torch.tensor([w["exponent"] for w in ws[start:start + nb]]).transpose(0, 1)
            y = linear_blocks(w_m, w_e, x_m, x_e, self.fmt_w, self.fmt_x,
                              guard_bits=self.guard_bits, acc_width=self.acc_width,
                              partial_sums=self.partial_sums)
            if self.output == "fp32":
                out.append({"bits": linear_fp32(y, self.fmt_w, self.fmt_x,
                                                guard_bits=self.guard_bits).tolist()})
            else:
                out.append({"sum": y.sum.tolist(), "exponent": y.exponent.tolist(),
                            "nan": [int(f) for f in y.nan.tolist()]})
        return {"o": out}

