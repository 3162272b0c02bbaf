"""Eight-lane float32 vectors for Numba kernels: explicit register tiling.

Numba's loop vectoriser only vectorises innermost loops, and its SLP vectoriser is
off (``NUMBA_SLP_VECTORIZE=0``, known LLVM miscompilations), so a matrix product
written with scalar accumulators either keeps them in memory or vectorises along
the reduction with strided loads. These intrinsics give kernels a first-class
``<8 x float>`` value (an AVX ``ymm`` register; two SSE registers without AVX), so
a micro-kernel can hold e.g. 4 pixels x 24 channels of accumulators in registers
across the whole reduction, the way BLAS micro-kernels do.

All functions are Numba intrinsics, usable only inside ``@njit`` code:

==========================  ====================================================
``vload(a, i, j)``          ``a[i, j:j+8]`` of a 2-D float32 array
``vload1(a, i)``            ``a[i:i+8]`` of a 1-D float32 array
``vstore(a, i, j, v)``      ``a[i, j:j+8] = v``
``vstore1(a, i, v)``        ``a[i:i+8] = v``
``vsplat(x)``               ``[x] * 8``
``vfma(a, b, c)``           ``a * b + c`` (fused, one rounding)
``vadd(a, b)``, ``vmul``    lane-wise ``+``, ``*``
``vsub(a, b)``, ``vmax``     lane-wise ``-``, ``max`` (NaN wins in ``vmax``)
``vclamp(v, lo, hi)``       ``min(max(v, lo), hi)``; NaN lanes stay NaN
``vexp(v)``                 ``exp`` per lane (Cephes ``expf``, about 1 ulp;
                            ``exp(x < -87.3)`` gives ~1e-38 instead of a denormal)
``vsum(v)``                 sum of the 8 lanes (float32)
==========================  ====================================================

Loads and stores are unaligned and unchecked (no bounds check, no negative-index
wraparound): the caller guarantees ``j + 8 <= a.shape[1]`` and that the last axis
is contiguous (C-contiguous arrays and their row views). Channel counts are padded
to multiples of 8 (:data:`LANES`) in packed weights and scratch buffers so every
load is in bounds.

Without Numba, or with ``NUMBA_DISABLE_JIT=1`` (see ``nnlite.jit``), the kernels run
as plain Python and these functions are NumPy stand-ins on float32 arrays of 8 with
the same arithmetic (``vfma`` rounds once through float64, ``vexp`` is the same
Cephes polynomial), so the Python path of every kernel can be run and covered; it is
far too slow for anything but tests.
"""
import numpy as np

from nnlite.jit import HAVE_NUMBA, JIT_DISABLED

#: Lanes of a vector; channel counts in packed layouts are multiples of this.
LANES = 8


def padded(c):
    """Smallest multiple of :data:`LANES` that is >= ``c``.

    Parameters
    ----------
    c : int
        A channel count.

    Returns
    -------
    c8 : int
        ``ceil(c / 8) * 8``.
    """
    return -(-int(c) // LANES) * LANES


def aligned_zeros(shape, align=64):
    """A zero float32 array whose data starts on an ``align``-byte boundary.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    align : int
        Alignment in bytes (a multiple of 4); 64 is a cache line.

    Returns
    -------
    a : float32 ndarray, C-contiguous
        A view into a slightly larger buffer. With rows of a multiple of 8 floats,
        every vector of every row is 32-byte aligned and never straddles a cache
        line (NumPy itself only guarantees 16 bytes).
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    n = int(np.prod(shape, dtype=np.int64))
    buf = np.zeros(n + align // 4, np.float32)
    off = (-buf.ctypes.data % align) // 4
    return buf[off:off + n].reshape(shape)


if HAVE_NUMBA and not JIT_DISABLED:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, models, register_model

    class Vec8Type(types.Type):
        """Numba type of an ``<8 x float>`` LLVM vector value."""

        def __init__(self):
            super().__init__(name="f32x8")

    #: The Numba type of the vectors the intrinsics take and return.
    f32x8 = Vec8Type()
    _VT = ir.VectorType(ir.FloatType(), LANES)

    @register_model(Vec8Type)
    class _Vec8Model(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, _VT)

    def _check_float32_array(arr, ndim, name):
        if not (isinstance(arr, types.Array) and arr.dtype == types.float32
                and arr.ndim == ndim):
            raise TypeError(f"{name} needs a {ndim}-D float32 array, got {arr}")

    def _item_ptr(context, builder, aryty, ary, idx_types, idx_values):
        """Pointer to ``ary[idx...]`` without wraparound or bounds checks, as ``<8 x float>*``."""
        a = context.make_array(aryty)(context, builder, ary)
        inds = [context.cast(builder, v, t, types.intp) for v, t in zip(idx_values, idx_types)]
        ptr = cgutils.get_item_pointer2(context, builder, a.data,
                                        cgutils.unpack_tuple(builder, a.shape),
                                        cgutils.unpack_tuple(builder, a.strides),
                                        aryty.layout, inds)
        return builder.bitcast(ptr, _VT.as_pointer())

    def _call_intrinsic(builder, name, args):
        fnty = ir.FunctionType(_VT, [_VT] * len(args))
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)

    @intrinsic
    def vload(typingctx, a, i, j):
        _check_float32_array(a, 2, "vload")
        sig = f32x8(a, i, j)

        def codegen(context, builder, sig, args):
            ptr = _item_ptr(context, builder, sig.args[0], args[0], sig.args[1:], args[1:])
            return builder.load(ptr, align=4)
        return sig, codegen

    @intrinsic
    def vload1(typingctx, a, i):
        _check_float32_array(a, 1, "vload1")
        sig = f32x8(a, i)

        def codegen(context, builder, sig, args):
            ptr = _item_ptr(context, builder, sig.args[0], args[0], sig.args[1:], args[1:])
            return builder.load(ptr, align=4)
        return sig, codegen

    @intrinsic
    def vstore(typingctx, a, i, j, v):
        _check_float32_array(a, 2, "vstore")
        sig = types.void(a, i, j, v)

        def codegen(context, builder, sig, args):
            ptr = _item_ptr(context, builder, sig.args[0], args[0], sig.args[1:3], args[1:3])
            builder.store(args[3], ptr, align=4)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def vstore1(typingctx, a, i, v):
        _check_float32_array(a, 1, "vstore1")
        sig = types.void(a, i, v)

        def codegen(context, builder, sig, args):
            ptr = _item_ptr(context, builder, sig.args[0], args[0], sig.args[1:2], args[1:2])
            builder.store(args[2], ptr, align=4)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def vsplat(typingctx, x):
        sig = f32x8(x)

        def codegen(context, builder, sig, args):
            xf = context.cast(builder, args[0], sig.args[0], types.float32)
            v = builder.insert_element(ir.Constant(_VT, ir.Undefined), xf,
                                       ir.Constant(ir.IntType(32), 0))
            mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), mask)
        return sig, codegen

    @intrinsic
    def vfma(typingctx, a, b, c):
        sig = f32x8(a, b, c)

        def codegen(context, builder, sig, args):
            return _call_intrinsic(builder, "llvm.fma.v8f32", list(args))
        return sig, codegen

    @intrinsic
    def vadd(typingctx, a, b):
        sig = f32x8(a, b)

        def codegen(context, builder, sig, args):
            return builder.fadd(args[0], args[1])
        return sig, codegen

    @intrinsic
    def vmul(typingctx, a, b):
        sig = f32x8(a, b)

        def codegen(context, builder, sig, args):
            return builder.fmul(args[0], args[1])
        return sig, codegen

    @intrinsic
    def vclamp(typingctx, v, lo, hi):
        sig = f32x8(v, lo, hi)

        def codegen(context, builder, sig, args):
            v, lo, hi = args
            # Selects on ordered compares: a NaN lane compares false and is kept.
            v = builder.select(builder.fcmp_ordered("<", v, lo), lo, v)
            return builder.select(builder.fcmp_ordered(">", v, hi), hi, v)
        return sig, codegen

    @intrinsic
    def vsum(typingctx, v):
        sig = types.float32(v)

        def codegen(context, builder, sig, args):
            v = args[0]
            i32 = ir.IntType(32)
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, 4), [0, 1, 2, 3]))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, 4), [4, 5, 6, 7]))
            s = builder.fadd(lo, hi)
            s2 = builder.fadd(s, builder.shuffle_vector(
                s, s, ir.Constant(ir.VectorType(i32, 4), [2, 3, 2, 3])))
            return builder.fadd(builder.extract_element(s2, ir.Constant(i32, 0)),
                                builder.extract_element(s2, ir.Constant(i32, 1)))
        return sig, codegen

    @intrinsic
    def vsub(typingctx, a, b):
        sig = f32x8(a, b)

        def codegen(context, builder, sig, args):
            return builder.fsub(args[0], args[1])
        return sig, codegen

    @intrinsic
    def vmax(typingctx, a, b):
        sig = f32x8(a, b)

        def codegen(context, builder, sig, args):
            a, b = args
            # a > b ? a : b, then NaN in either operand gives NaN.
            m = builder.select(builder.fcmp_ordered(">", a, b), a, b)
            return builder.select(builder.fcmp_unordered("uno", a, a), a, m)
        return sig, codegen

    def _vconst(x):
        return ir.Constant(_VT, [float(np.float32(x))] * LANES)

    @intrinsic
    def vexp(typingctx, x):
        sig = f32x8(x)

        def codegen(context, builder, sig, args):
            # Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-5 polynomial for
            # exp(r) (~1 ulp), times 2^n built in the exponent bits. Inputs are
            # clamped to [-87.3, 88.4] (below that the result is ~1e-38, not a
            # denormal); NaN stays NaN.
            x = args[0]
            fma = "llvm.fma.v8f32"
            xc = builder.select(builder.fcmp_ordered("<", x, _vconst(-87.33654)),
                                _vconst(-87.33654), x)
            xc = builder.select(builder.fcmp_ordered(">", xc, _vconst(88.37626)),
                                _vconst(88.37626), xc)
            fx = _call_intrinsic(builder, fma, [xc, _vconst(1.44269504088896341),
                                                _vconst(0.5)])
            fx = _call_intrinsic(builder, "llvm.floor.v8f32", [fx])
            r = _call_intrinsic(builder, fma, [fx, _vconst(-0.693359375), xc])
            r = _call_intrinsic(builder, fma, [fx, _vconst(2.12194440e-4), r])
            p = _vconst(1.9875691500e-4)
            for coef in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                         1.6666665459e-1, 5.0000001201e-1):
                p = _call_intrinsic(builder, fma, [p, r, _vconst(coef)])
            z = builder.fmul(r, r)
            y = _call_intrinsic(builder, fma, [p, z, r])
            y = builder.fadd(y, _vconst(1.0))
            vi = ir.VectorType(ir.IntType(32), LANES)
            n = builder.fptosi(fx, vi)
            n = builder.shl(builder.add(n, ir.Constant(vi, [127] * LANES)),
                            ir.Constant(vi, [23] * LANES))
            y = builder.fmul(y, builder.bitcast(n, _VT))
            return builder.select(builder.fcmp_unordered("uno", x, x), x, y)
        return sig, codegen

else:  # plain Python: numba is missing, or NUMBA_DISABLE_JIT=1
    f32x8 = None
    _F = np.float32

    def vload(a, i, j):
        return a[i, j:j + LANES].copy()

    def vload1(a, i):
        return a[i:i + LANES].copy()

    def vstore(a, i, j, v):
        a[i, j:j + LANES] = v

    def vstore1(a, i, v):
        a[i:i + LANES] = v

    def vsplat(x):
        return np.full(LANES, x, np.float32)

    def vfma(a, b, c):
        # float32 * float32 is exact in float64: one rounding of the sum, as a fused FMA.
        return (a.astype(np.float64) * b + c).astype(np.float32)

    def vadd(a, b):
        return a + b

    def vmul(a, b):
        return a * b

    def vsub(a, b):
        return a - b

    def vclamp(v, lo, hi):
        v = np.where(v < lo, lo, v)  # NaN compares false and is kept
        return np.where(v > hi, hi, v)

    def vmax(a, b):
        return np.where(np.isnan(a), a, np.where(a > b, a, b))

    def vsum(v):
        s = v[:4] + v[4:]  # the intrinsic's order of additions
        s = s[:2] + s[2:]
        return s[0] + s[1]

    def vexp(x):
        xc = np.minimum(np.maximum(x, _F(-87.33654)), _F(88.37626))
        fx = np.floor(vfma(xc, vsplat(1.44269504088896341), vsplat(0.5)))
        r = vfma(fx, vsplat(-0.693359375), xc)
        r = vfma(fx, vsplat(2.12194440e-4), r)
        p = vsplat(1.9875691500e-4)
        for coef in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                     1.6666665459e-1, 5.0000001201e-1):
            p = vfma(p, r, vsplat(coef))
        y = vfma(p, r * r, r) + _F(1.0)
        scale = ((np.nan_to_num(fx).astype(np.int32) + 127) << 23).view(np.float32)
        return np.where(np.isnan(x), x, y * scale)
