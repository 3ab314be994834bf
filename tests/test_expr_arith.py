"""The IR's arithmetic by constants (mul, div, mod): the same value in the fold, numpy and z3."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import z3

from checker.compile_np import CodeGen
from checker.z3_terms import translate
from model.lang.expr import INT, E, const, show, var


def _terms() -> list[E]:
    x, y = var("s", "x", INT), var("s", "y", INT)
    return [x * 4096, 3 * x, x // 4096, x % 4096, (x + y) // 4096 * 4096,
            (x - y) % 4096, x - x % 4096 + y // 2]


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_divisor_is_a_positive_int(k: object) -> None:
    x = var("s", "x", INT)
    for op in (lambda: x * k, lambda: x // k, lambda: x % k):  # type: ignore[operator]
        with pytest.raises(TypeError, match="positive integer constant"):
            op()


def test_constants_fold_as_python() -> None:
    for a, k in itertools.product((-8193, -1, 0, 1, 4095, 4096, 12289), (1, 2, 4096)):
        c = const(a, INT)
        assert (c * k).val == a * k and (c // k).val == a // k and (c % k).val == a % k


def test_engines_agree_with_python() -> None:
    vals = (-(1 << 62), -8193, -1, 0, 1, 4095, 4096, 4097, 12288, (1 << 62) + 5)
    for term in _terms():
        gen = CodeGen()
        out = gen.emit(term)
        # replay evaluates the compiled code over Python integers (exact for any value); the
        # search over int64 holds only a scope's small values
        xs = np.array([a for a in vals for _ in vals[:4]], dtype=object)
        ys = np.array(list(vals[:4]) * len(vals), dtype=object)
        env = {"np": np, "s_x": xs, "s_y": ys}
        exec("\n".join(gen.lines), env)
        got_np = np.broadcast_to(eval(out, env), xs.shape)
        assert [int(v) for v in got_np] == [eval_py(term, {"x": int(a), "y": int(b)})
                                            for a, b in zip(xs, ys, strict=True)], show(term)
        zx, zy = z3.Ints("x y")
        zt = translate(term, {("s", "x"): zx, ("s", "y"): zy})
        for a, b in itertools.product(vals, vals[:4]):
            want = eval_py(term, {"x": a, "y": b})
            got = z3.simplify(z3.substitute(zt, (zx, z3.IntVal(a)), (zy, z3.IntVal(b))))
            assert got.as_long() == want, (show(term), a, b)


def eval_py(e: E, env: dict[str, int]) -> int:
    if e.op == "const":
        return int(e.val)  # type: ignore[call-overload]
    if e.op == "var":
        return env[e.val[1]]  # type: ignore[index]
    a, b = (eval_py(x, env) for x in e.args)
    ops = {"add": int.__add__, "sub": int.__sub__, "mul": int.__mul__,
           "div": int.__floordiv__, "mod": int.__mod__}
    return ops[e.op](a, b)


def test_show_parenthesises() -> None:
    x, y = var("s", "x", INT), var("s", "y", INT)
    assert show((x + y) % 4096) == "(x + y) mod 4096"
    assert show(x % 4096 + y) == "(x mod 4096) + y"
