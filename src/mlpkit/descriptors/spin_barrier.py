"""A barrier between the blocks of one parallel launch, so that several dependent stages (features → networks →
forces) run in a single launch instead of one launch each.

Why: every numba launch wakes the pool's sleeping threads twice (numba's workqueue first synchronises each
thread's thread count, then runs the tasks) and puts the calling thread to sleep until they finish. On an idle
virtual machine each wake-up of a halted virtual CPU goes through the hypervisor; at 10k atoms on 2 threads the
measured step carried ~30 ms more wall time than its work (docs/benchmarks/md-speed.md), about the same at 53k
atoms: a cost per launch, not per atom. Inside one launch the blocks wait for each other here instead, spinning
on a flag per block for the few microseconds to a millisecond that the blocks' costs differ by.

How: each block owns one cache line of ``flags`` ((n_blocks, 8) int64, zeroed before the launch) and publishes
the stage it finished with a *release* store; it then reads every block's flag with *acquire* loads until all
have reached the stage. Release/acquire (plain moves on x86, with the compiler kept from reordering memory
accesses across them) make every write a block did before the barrier visible to the others after it.

**Only for launches whose blocks all run at the same time**: one block per thread of numba's ``workqueue`` pool
(it gives each thread its share of a ``prange`` at once); with more blocks than threads, or another layer, a
block could wait for one that never starts. Callers check :func:`concurrent_blocks`.
"""

from __future__ import annotations

import time

import numba
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from mlpkit.descriptors import kernel_cache

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources

#: int64 slots per block in ``flags``: one 64-byte cache line each (blocks never write a shared line)
STRIDE = 8


@intrinsic
def _load_acquire(typingctx, arr, index):
    """``arr[index]`` (int64 array, non-negative index) with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(index, types.Integer)):
        return None
    sig = types.int64(arr, index)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]], wraparound=False)
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, arr, index, value):
    """``arr[index] = value`` (int64 array, non-negative index) with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(index, types.Integer)):
        return None
    sig = types.void(arr, index, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]], wraparound=False)
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _yield_cpu(typingctx):
    """``sched_yield()`` (POSIX): a thread queued for this core (e.g. the block being waited for) runs first."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, "sched_yield"), [])

    return sig, codegen


@intrinsic
def _sleep_us(typingctx, microseconds):
    """``usleep(microseconds)`` (POSIX): the waiting thread gives its core back."""
    if not isinstance(microseconds, types.Integer):
        return None
    sig = types.int32(microseconds)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(i32, [i32])
        usleep = cgutils.get_or_insert_function(builder.module, fnty, "usleep")
        return builder.call(usleep, [builder.trunc(args[0], i32)])

    return sig, codegen


@intrinsic
def _clock_ns(typingctx, clock):
    """``clock_gettime(clock)`` in ns (Linux clock ids: 1 monotonic, 3 this thread's CPU time)."""
    if not isinstance(clock, types.Integer):
        return None
    sig = types.int64(clock)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        fnty = ir.FunctionType(i32, [i32, spec.type])
        clock_gettime = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(clock_gettime, [builder.trunc(args[0], i32), spec])
        zero = ir.Constant(i32, 0)
        sec = builder.load(builder.gep(spec, [zero, ir.Constant(i32, 0)]))
        nsec = builder.load(builder.gep(spec, [zero, ir.Constant(i32, 1)]))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


@njit(cache=True, nogil=True)
def stamp(timeline, block, k) -> None:
    """If ``timeline`` ((n_blocks, 2 K) int64) has rows (a launch's timeline, recorded only when asked for):
    ``timeline[block, k]`` = now (ns, monotonic clock), ``timeline[block, K + k]`` = the thread's CPU time (ns)."""
    if timeline.shape[0] > 0:
        timeline[block, k] = _clock_ns(1)
        timeline[block, timeline.shape[1] // 2 + k] = _clock_ns(3)


def now_ns() -> int:
    """The clock of :func:`stamp` (ns), from Python."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


#: ns a waiting block spins (yielding now and then, in case the awaited block is queued on the same core) before
#: it sleeps in :data:`SLEEP_US` naps: on an idle machine the blocks of a stage mostly finish within about this
#: (1-3 % of a stage at 10k atoms per thread), so threads seldom halt and need waking; a longer wait mostly means
#: the partner was descheduled (other jobs), and then the core goes back to them (measured under load: spinning
#: up to 1 ms per barrier cost 10 % more CPU per step, 0.2 ms about none)
SPIN_NS = 200_000
SLEEP_US = 20


@njit(cache=True, nogil=True)
def barrier(flags, block, stage) -> None:
    """Block ``block`` finished ``stage`` (1, 2, ... within one launch): wait until every block has.
    ``flags``: (n_blocks * STRIDE,) int64, zero at the start of the launch."""
    _store_release(flags, block * STRIDE, stage)
    start = _clock_ns(1)
    for other in range(flags.shape[0] // STRIDE):
        spins = 0
        while _load_acquire(flags, other * STRIDE) < stage:
            spins += 1
            if spins % 256 == 0:
                if _clock_ns(1) - start > SPIN_NS:
                    _sleep_us(SLEEP_US)
                else:  # the awaited block may be queued behind this one on the same core: let it run
                    _yield_cpu()


def concurrent_blocks(n_blocks: int) -> bool:
    """Whether ``n_blocks`` blocks of one ``prange`` launch all run at once, so that :func:`barrier` cannot wait
    for a block that never starts: one block per thread of numba's ``workqueue`` pool (it gives each thread its
    share at once). Not on ``tbb`` (work stealing: one thread may run two blocks in turn) nor ``omp`` (a team
    may get fewer threads than asked for, e.g. with ``OMP_DYNAMIC``): those keep the separate launches."""
    if n_blocks > numba.config.NUMBA_NUM_THREADS:
        return False
    try:
        layer = numba.threading_layer()  # the layer in use, once a parallel kernel has run
    except ValueError:
        layer = numba.config.THREADING_LAYER
    return layer == "workqueue"
