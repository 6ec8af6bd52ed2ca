"""Bit-exact integer model of the accumulator of dot-product results.

The accumulator sums the partial results ``(S_j, E_j, nan_j)`` of the dot unit over the
``K / k`` blocks of one output (a *group*; the input flagged ``last`` closes it). ``S_j``
weighs ``2**(E_j - c)`` with ``c = 2*bias + f_a + f_b`` the same for every input (``f = m - 2``
for an MXINT operand, ``bias + M - 1`` of the element for a minifloat one), so only ``E_j``
matters for alignment. With ``G`` guard bits and width ``W``:

* The state is ``(A, E_max, nan)``: the value so far is ``A * 2**(E_max - G - c)``, i.e. ``A``
  is scaled by ``2**G`` relative to the running MAXIMUM exponent ``E_max``.
* The first input of a group loads ``A = S << G`` (it fits ``W >= in_width + G`` bits),
  ``E_max = E``, ``nan = nan_j``.
* Each further input, with ``x = S << G``:

  - ``E > E_max``: ``A = (A >> (E - E_max)) + x``, ``E_max = E``;
  - ``E <= E_max``: ``A = A + (x >> (E_max - E))``;

  ``>>`` is an ARITHMETIC shift (floor toward minus infinity; a shift past the width
  leaves ``0`` or ``-1``). ``nan |= nan_j``.
* Saturation is STICKY: the first time ``A`` leaves ``[-2**(W-1), 2**(W-1) - 1]`` (the
  two's complement range of ``W`` bits) the group is *saturated* toward that side, and its
  output sum is ``2**(W-1) - 1`` if ``A`` went above, ``-2**(W-1)`` if it went below,
  whatever the later inputs (they still raise ``E_max`` and set ``nan``). A group that
  never leaves the range is not clamped at all. (This replaces a clamp after every input,
  which put a saturation multiplexer in the hardware's loop; results differ only for
  groups that saturate, and both are only "out of range" then.)
* After the ``last`` input the output is ``(sum = A or the bound, exponent = E_max,
  nan)``: the value is ``sum * 2**(exponent - G - c)``. The sum and exponent of a NaN
  group are computed as usual and carry no meaning.

Error bound (no saturation): every alignment floors one term, losing less than one unit
``2**(E_max,j - G)`` at the running maximum after step ``j`` (in units of ``2**-c``), and the
errors add, so with ``V`` the exact group sum ``sum_j S_j 2**E_j`` and ``R`` the output
value ``sum * 2**(exponent - G)``::

    0 <= V - R < sum_{j=2..n} 2**(E_max,j - G) <= (n - 1) * 2**(exponent - G)

(``R == V`` for ``n == 1``). Lossless: no bit is dropped when ``G >= max_j E_j - min_j E_j``
within the group, and nothing saturates when ``W >= in_width + G + ceil(log2 n)``; then
``R == V``. Exponent codes of dot results span ``[0, 2**(e+1) - 2]``, so ``G >= 2**(e+1) - 2``
makes every group exact (practical for small ``e`` only).

Two interleaved partial sums (``partial_sums=2``, the hardware's ``align="interleave"``):

* The inputs ``j = 0, 1, 2, ...`` of a group (in arrival order) are dealt to partial sum
  ``q = j mod 2``. Each partial sum ``(A_q, E_q)`` runs the recurrence above on its own
  inputs only, aligned to its OWN running maximum ``E_q``: its first input loads
  ``A_q = x``, ``E_q = E``; a later one shifts ``A_q`` by ``E - E_q`` (if positive) or the
  input by ``E_q - E``, floor shifts as above.
* Saturation is sticky over the GROUP: the first time either partial sum leaves
  ``[-2**(W-1), 2**(W-1) - 1]`` (checked after each input, in input order) the group
  saturates toward that side, whatever follows (both partial sums included).
* At the group's end, ``E = max(E_0, E_1)`` (the group's largest exponent code, as with one
  sum) and ``T = (A_0 >> (E - E_0)) + (A_1 >> (E - E_1))`` (floor shift of the partial sum
  with the smaller maximum; a group of one input has no ``A_1`` and ``T = A_0``). If the
  group saturated, the output sum is that bound; else if ``T`` is out of the ``W``-bit
  range, the bound of ``T``'s side; else ``T``. NaN is sticky over the group.
* The output's exponent equals the one-sum recurrence's; its sum may differ in the low
  bits (different floors), and, for groups that saturate, in which bound is taken when the
  partial sums leave the range on opposite sides (the first excursion still decides).

Error bound of two partial sums (no saturation): partial ``q`` of ``n_q`` inputs floors
``n_q - 1`` times, each losing less than ``2**(E_max,j - G)`` (``E_q`` after input ``j`` is at
most the group's running maximum), and the combination floors once, losing less than
``2**(E - G)`` (nothing when ``E_0 == E_1``). For ``n >= 2`` that is
``(ceil(n/2) - 1) + (floor(n/2) - 1) + 1 = n - 1`` floors::

    0 <= V - R < sum_{j=3..n} 2**(E_max,j - G) + 2**(E - G) <= (n - 1) * 2**(E - G)

the same ``n - 1`` units as one sum (the first, finer form trades the term of input 2 for
one at the final maximum). Lossless under the same conditions as one sum: with
``G >= max_j E_j - min_j E_j`` every partial sum and the combination's shift are exact, and
with ``W >= in_width + G + ceil(log2 n)`` neither partial sum nor ``T`` leaves the range.

Four partial sums (``partial_sums=4``, the tile's ``blocks_per_cycle=4``: a lane's four
accumulators, each taking every fourth block of a row) generalise the two above with
``P = 4``:

* input ``j`` of a group joins partial sum ``q = j mod P``, which runs the one-sum
  recurrence on its own inputs, aligned to its own running maximum ``E_q``; saturation is
  sticky over the group, the first excursion of any partial sum (in input order) deciding;
* at the group's end ``E = max_q E_q`` over the partial sums that have an input (``min(n,
  P)`` of them) and ``T = sum_q (A_q >> (E - E_q))`` (floor shifts); then the range check
  of two partial sums: the group's bound if it saturated, else ``T``'s side's bound if ``T``
  is out of range, else ``T``. ``P = 2`` is exactly the definition above, ``P = 1`` the
  one-sum recurrence.

Error bound of ``P`` partial sums (no saturation): with ``P' = min(n, P)`` non-empty
partial sums of ``n_q`` inputs, partial ``q`` floors ``n_q - 1`` times (each loss below one
unit at the group's running maximum after that input, as above) and the combination floors
at most ``P' - 1`` times (the shift of a partial sum whose ``E_q`` is already ``E`` is
exact, and at least one is), each losing less than ``2**(E - G)``. In all
``sum_q (n_q - 1) + (P' - 1) = n - P' + P' - 1 = n - 1`` floors, so for every ``P``::

    0 <= V - R < (n - 1) * 2**(E - G)

the same ``n - 1`` units as one sum (``R == V`` for ``n == 1``), in the finer form
``sum_{j=P'+1..n} 2**(E_max,j - G) + (P' - 1) * 2**(E - G)``. Lossless under the same
conditions: ``G >= max_j E_j - min_j E_j`` makes every shift exact, and ``W >= in_width + G
+ ceil(log2 n)`` keeps every partial sum and ``T`` in range (``|T| <= n * 2**(in_width - 1
+ G)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .dot import mx_dot_sum_width
from .format import check_int, operand_format

__all__ = ["ACC_HEADROOM", "DEFAULT_GUARD_BITS", "MAX_ACC_WIDTH", "PARTIAL_SUMS", "AccumResult",
           "accum_in_width", "accumulate", "accumulate_stream", "check_acc_widths",
           "default_acc_width", "default_guard_bits", "resolve_acc_width"]

#: Widest accumulator: ``A`` and every intermediate sum stay exact in int64.
MAX_ACC_WIDTH = 62
#: Default headroom of the accumulator over one input: 2**8 equal-exponent inputs.
ACC_HEADROOM = 8
#: Default guard bits below the running maximum exponent.
DEFAULT_GUARD_BITS = 8
#: Partial sums a group may be dealt to: 1 (one running sum), 2 (interleaved, or the tile's
#: two blocks per cycle) or 4 (the tile's four blocks per cycle).
PARTIAL_SUMS = (1, 2, 4)


def default_acc_width(in_width: int, guard_bits: int) -> int:
    """The default accumulator width over inputs of ``in_width`` bits:
    ``in_width + guard_bits + 8``, at most 62."""
    return min(in_width + guard_bits + ACC_HEADROOM, MAX_ACC_WIDTH)


def accum_in_width(*, a_bits: int | None = None, b_bits: int | None = None, block: int,
                   a_element: str = "int", b_element: str = "int") -> int:
    """Width of the accumulator's input, the dot product's ``sum``, for operands given by
    the records' fields (:func:`golden.format.operand_format`): MXINT ``a_bits`` x
    ``b_bits``, or a minifloat element on either side, blocks of ``block`` elements
    (:func:`golden.dot.mx_dot_sum_width`; for MXINT :func:`golden.dot.dot_sum_width`)."""
    fmt_a = operand_format(a_element, a_bits, block=block, side="a")
    fmt_b = operand_format(b_element, b_bits, block=block, side="b")
    return mx_dot_sum_width(fmt_a, fmt_b)


def default_guard_bits(*, a_bits: int | None = None, b_bits: int | None = None, block: int,
                       a_element: str = "int", b_element: str = "int") -> int:
    """The default ``guard_bits`` for dot products of the operands (fields as
    :func:`accum_in_width`): :data:`DEFAULT_GUARD_BITS` (8), or fewer when the dot results
    are so wide that 8 would not fit the accumulator, ``MAX_ACC_WIDTH - w`` (``w`` the dot
    result's width): 6 for E5M2 x E4M3 at k = 32 (``w`` = 56), 7 at k = 16. Every pair
    whose results are at most 54 bits wide gets 8: every MXFP pair without E5M2, and MXINT
    ``a`` x ``b`` bits with ``a + b <= 44`` even at k = 1024. A pair wider than
    ``MAX_ACC_WIDTH`` (E5M2 x E5M2) gets 8, which :func:`check_acc_widths` then refuses by
    name."""
    in_width = accum_in_width(a_bits=a_bits, b_bits=b_bits, block=block, a_element=a_element,
                              b_element=b_element)
    if in_width > MAX_ACC_WIDTH:
        return DEFAULT_GUARD_BITS
    return min(DEFAULT_GUARD_BITS, MAX_ACC_WIDTH - in_width)


def resolve_acc_width(*, a_bits: int | None = None, b_bits: int | None = None, block: int,
                      guard_bits: int, acc_width: int | None, a_element: str = "int",
                      b_element: str = "int") -> int:
    """``acc_width``, or when it is None the default over the dot products of the operands
    (:func:`accum_in_width`)."""
    if acc_width is not None:
        return acc_width
    return default_acc_width(accum_in_width(a_bits=a_bits, b_bits=b_bits, block=block,
                                            a_element=a_element, b_element=b_element),
                             guard_bits)


def check_acc_widths(*, a_bits: int | None = None, b_bits: int | None = None, block: int,
                     guard_bits: int, acc_width: int | None, a_element: str = "int",
                     b_element: str = "int") -> tuple[int, int]:
    """Validate ``guard_bits`` and ``acc_width`` for dot products of the operands (MXINT
    ``a_bits`` x ``b_bits``, or minifloat elements) over blocks of ``block`` elements, and
    return them (``acc_width`` resolved when None).

    The one rule the hardware records and :mod:`golden.nn` share: with ``w`` the dot
    result's width (:func:`accum_in_width`), ``guard_bits`` is at most
    ``MAX_ACC_WIDTH - w`` and ``acc_width`` holds one input plus the guard bits,
    ``w + guard_bits .. MAX_ACC_WIDTH``.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and the allowed range; a ``ValueError`` too when
        the dot results alone are wider than ``MAX_ACC_WIDTH`` (E5M2 x E5M2).
    """
    in_width = accum_in_width(a_bits=a_bits, b_bits=b_bits, block=block, a_element=a_element,
                              b_element=b_element)
    if in_width > MAX_ACC_WIDTH:
        names = [f"MXINT{bits}" if element == "int" else element.upper()
                 for element, bits in ((a_element, a_bits), (b_element, b_bits))]
        raise ValueError(f"the dot results of {names[0]} x {names[1]} at block {block} are "
                         f"{in_width} bits wide, beyond the accumulator's {MAX_ACC_WIDTH}")
    guard = check_int("guard_bits", guard_bits, 0, MAX_ACC_WIDTH - in_width)
    acc = resolve_acc_width(a_bits=a_bits, b_bits=b_bits, block=block, guard_bits=guard,
                            acc_width=acc_width, a_element=a_element, b_element=b_element)
    return guard, check_int("acc_width", acc, in_width + guard, MAX_ACC_WIDTH)


@dataclass(frozen=True)
class AccumResult:
    """Outputs of the accumulator, one per group.

    Members
    -------
    sum : torch.Tensor
        int64 ``A``, in ``[-2**(W-1), 2**(W-1) - 1]``, scaled by ``2**G``.
    exponent : torch.Tensor
        int64, the largest exponent code of the group.
    nan : torch.Tensor
        bool, true when any input of the group was NaN.
    """

    sum: torch.Tensor
    exponent: torch.Tensor
    nan: torch.Tensor


def _check(guard_bits: int, acc_width: int, s: torch.Tensor, e: torch.Tensor) -> None:
    check_int("acc_width", acc_width, 1, MAX_ACC_WIDTH)
    check_int("guard_bits", guard_bits, 0, MAX_ACC_WIDTH - 1)
    limit = 1 << (MAX_ACC_WIDTH - guard_bits)
    if bool((s.abs() >= limit).any()):
        raise ValueError(f"sum must be below 2**{MAX_ACC_WIDTH - guard_bits} in magnitude "
                         f"for guard_bits={guard_bits}")
    if bool((e < 0).any()):
        raise ValueError("exponent must be non-negative")


def accumulate(sum: torch.Tensor, exponent: torch.Tensor, nan: torch.Tensor, *,
               guard_bits: int, acc_width: int, partial_sums: int = 1) -> AccumResult:
    """Accumulate groups laid out along the last axis (every row is one group).

    Parameters
    ----------
    sum, exponent, nan : torch.Tensor
        Shape ``(..., n)``, ``n >= 1``: dot results ``S_j`` (integers), exponent codes
        ``E_j`` (non-negative) and NaN flags, in the order they arrive.
    guard_bits : int
        ``G``, extra low bits below the running maximum exponent.
    acc_width : int
        ``W``, accumulator width, 1 to 62.
    partial_sums : int
        1 (default): one running sum (the hardware's ``align="loop"`` and ``"stall"``);
        2: inputs dealt alternately to two partial sums combined at the group's end
        (``align="interleave"``, or the tile's ``blocks_per_cycle=2``); 4: dealt in turn to
        four partial sums (the tile's ``blocks_per_cycle=4``).

    Returns
    -------
    AccumResult
        Shape ``(...)``; see the module notes for the exact recurrences.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, its value and what is allowed.
    """
    s = sum.to(torch.int64)
    e = exponent.to(torch.int64)
    _check(guard_bits, acc_width, s, e)
    if not isinstance(partial_sums, int) or isinstance(partial_sums, bool) \
            or partial_sums not in PARTIAL_SUMS:
        raise ValueError(f"partial_sums must be 1, 2 or 4, not {partial_sums!r}")
    if s.shape[-1] == 0:
        raise ValueError("every group needs at least one input")
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    x = s << guard_bits

    def excursion(a: torch.Tensor) -> torch.Tensor:
        return (a > hi).to(torch.int64) - (a < lo).to(torch.int64)

    # Partial sum q holds inputs q, q + P, q + 2P, ... (P = partial_sums); `out` is the
    # group's first excursion out of [lo, hi] (sticky): 0 none, 1 above, -1 below.
    acc = [x[..., q] for q in range(min(partial_sums, s.shape[-1]))]
    e_max = [e[..., q] for q in range(len(acc))]
    out = torch.zeros_like(acc[0])
    for a in acc:
        out = torch.where(out == 0, excursion(a), out)
    flag = nan.to(torch.bool).any(dim=-1)
    for j in range(len(acc), s.shape[-1]):
        q = j % partial_sums
        ej = e[..., j]
        # Shifts are clamped at 62: past every width, where an arithmetic shift has already
        # reached the sign (torch shifts of 64 or more are undefined).
        up = (ej - e_max[q]).clamp(min=0, max=MAX_ACC_WIDTH)
        down = (e_max[q] - ej).clamp(min=0, max=MAX_ACC_WIDTH)
        # A saturated group keeps its A frozen (in range for int64); only `out` matters.
        acc[q] = torch.where(out == 0, (acc[q] >> up) + (x[..., j] >> down), acc[q])
        out = torch.where(out == 0, excursion(acc[q]), out)
        e_max[q] = torch.maximum(e_max[q], ej)
    total, top = acc[0], e_max[0]
    if len(acc) > 1:
        # Each partial sum is floor-shifted to the largest maximum, then they are added: up
        # to four terms in [-2**61, 2**61), which int64 holds (a frozen saturated A may
        # wrap here, but then `out` already decides the result).
        for e_q in e_max[1:]:
            top = torch.maximum(top, e_q)
        total = acc[0] >> (top - e_max[0]).clamp(max=MAX_ACC_WIDTH)
        for a, e_q in zip(acc[1:], e_max[1:], strict=True):
            total = total + (a >> (top - e_q).clamp(max=MAX_ACC_WIDTH))
        out = torch.where(out == 0, excursion(total), out)
    total = torch.where(out > 0, hi, torch.where(out < 0, lo, total))
    return AccumResult(sum=total, exponent=top, nan=flag)


def accumulate_stream(sum: torch.Tensor, exponent: torch.Tensor, nan: torch.Tensor,
                      last: torch.Tensor, *, guard_bits: int, acc_width: int,
                      partial_sums: int = 1) -> AccumResult:
    """Accumulate a stream of inputs whose groups are closed by ``last``.

    Parameters
    ----------
    sum, exponent, nan, last : torch.Tensor
        1-D, in stream order. ``last`` marks the final input of each group; inputs after
        the final ``last`` belong to no finished group and produce no output.
    guard_bits, acc_width, partial_sums : int
        As :func:`accumulate`.

    Returns
    -------
    AccumResult
        1-D, one entry per ``last``.
    """
    ends = torch.nonzero(last.to(torch.bool)).flatten().tolist()
    starts = [0] + [i + 1 for i in ends[:-1]]
    n = max((b - a + 1 for a, b in zip(starts, ends, strict=True)), default=1)
    # Groups are padded at the end with (S = 0, E = 0, no NaN), which changes nothing: code
    # 0 never raises the maximum and adding zero to a value in range leaves it unchanged
    # (with several partial sums, a padding input that opens partial sum q loads A_q = 0 at
    # E_q = 0, which the combination adds as 0 without raising E).
    rows = len(ends)
    grid = {name: torch.zeros((rows, n), dtype=torch.int64) for name in ("s", "e", "f")}
    for r, (a, b) in enumerate(zip(starts, ends, strict=True)):
        grid["s"][r, :b - a + 1] = sum[a:b + 1].to(torch.int64)
        grid["e"][r, :b - a + 1] = exponent[a:b + 1].to(torch.int64)
        grid["f"][r, :b - a + 1] = nan[a:b + 1].to(torch.int64)
    return accumulate(grid["s"], grid["e"], grid["f"] != 0, guard_bits=guard_bits,
                      acc_width=acc_width, partial_sums=partial_sums)
