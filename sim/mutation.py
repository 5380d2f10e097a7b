"""``nanoquote mutate``: how many single-operator mutants of the gateware the tests kill.

A fixed, versioned catalogue (:data:`CATALOGUE`) names each mutant: a file under
``hw/gateware/``, an exact source snippet that must occur exactly once there, its
replacement and what the change means. An entry whose snippet no longer occurs exactly
once is *stale*: reported, never skipped silently, and the run fails until the catalogue
is brought up to date. Entries argued to be equivalent (no input in the validated domain
of docs/spec.md §1 can tell them from the original) carry the argument with them.

Each mutant is applied in a temporary copy of the source tree, never in the checkout, and
a chosen tier of tests runs against the copy with ``-x`` and a timeout. The package is
installed in editable mode, so a plain ``pytest`` in the copy would still import the
checkout. Every run therefore puts a package root on ``PYTHONPATH`` whose ``nanoquote/``
links the copy's ``nanoquote/*.py`` and its ``hw``, ``sim`` and ``host`` folders (the path
finder, which searches ``PYTHONPATH``, comes before the editable finder on
``sys.meta_path``), with ``PYTHONSAFEPATH`` set so that the working directory's own
``nanoquote/``, which lacks those links, is not found first. This module, loaded into each
run as a pytest plugin (``-p nanoquote.sim.mutation``), records which gateware files the
run imported and their hashes; a run whose imports are not the copy's, mutated file
included, stops the whole command. Before the baseline, a deliberately broken copy must
be what a run imports.

Verdicts: *killed* (a test failed), *timeout* (the run hung; counts as killed),
*survived* (the tier passed), *error* (the run could not judge the mutant). The score is
killed / (tried - equivalent); the exit status is 0 when it reaches ``--goal`` and no
entry is stale, no run erred and no equivalent mutant was killed (that would disprove its
argument), else 1; 2 when the baseline fails or the copy is not what the runs import.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue

from nanoquote.cli import count, describe_os_error, write_text_file

__all__ = [
    "CATALOGUE_VERSION", "CATALOGUE", "TARGET_FILES", "DEFAULT_TESTS", "DEFAULT_MARKER", "Mutant",
    "StaleMutant", "ProbeError", "RunOutcome", "Result", "Summary", "apply_mutant", "stale_mutants",
    "select", "Workspace", "summarize", "exit_status", "configure", "run",
]

#: Bumped whenever an entry is added, removed or changed, so reports can be compared.
CATALOGUE_VERSION = 2

#: The gateware files the catalogue mutates (repository-relative).
TARGET_FILES = (
    "hw/gateware/pipeline.py",
    "hw/gateware/coefficient_unit.py",
    "hw/gateware/refresh_timer.py",
    "hw/gateware/arith.py",
    "hw/gateware/top.py",
)

#: The default tier: the fast tests that exercise the gateware in ``amaranth.sim`` (no
#: Verilator build), ordered so that the quickest to catch a wrong datapath run first.
DEFAULT_TESTS = (
    "tests/hw/gateware/test_pipeline.py",
    "tests/hw/gateware/test_top.py",
    "tests/sim/device/test_software_device_vs_top.py",
    "tests/hw/gateware/test_dsp.py",
    "tests/hw/gateware/test_axil.py",
    "tests/hw/gateware/test_register_block.py",
    "tests/hw/test_model.py",
    "tests/hw/test_model_refresh.py",
)
DEFAULT_MARKER = "not rtl and not build and not slow"

#: What the copy needs to run the tests (copied), and what it never needs.
_COPIED = ("hw", "sim", "host", "nanoquote", "tests", "docs", "constraints", "pyproject.toml")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "*.egg-info")
#: Environment of a run: where the probe writes its record.
_PROBE_ENV = "NANOQUOTE_MUTATION_PROBE"
_SABOTAGE = "raise RuntimeError('nanoquote mutate: self-check, this copy is what the tests import')\n"


@dataclass(frozen=True)
class Mutant:
    """One single-operator change: ``find`` (exactly once in ``path``) becomes ``replace``."""

    name: str
    path: str
    find: str
    replace: str
    description: str
    #: why no input in the validated domain can tell it from the original ("" if it can)
    equivalent: str = ""


def _family(path: str, prefix: str) -> Callable[..., Mutant]:
    def make(slug: str, find: str, replace: str, description: str, equivalent: str = "") -> Mutant:
        return Mutant(f"{prefix}:{slug}", path, find, replace, description, equivalent)
    return make


_p = _family("hw/gateware/pipeline.py", "pipeline")
_c = _family("hw/gateware/coefficient_unit.py", "coef")
_r = _family("hw/gateware/refresh_timer.py", "refresh")
_a = _family("hw/gateware/arith.py", "arith")
_t = _family("hw/gateware/top.py", "top")

CATALOGUE: tuple[Mutant, ...] = (
    # -- pipeline.py: per-update stages and the accept/settle control ---------------------
    _p("crossed-strict", "(upd.bid >= upd.ask)", "(upd.bid > upd.ask)",
       "a locked book is not flagged crossed"),
    _p("quotable-and", "s1_quotable = s1_both & (co.legacy | ~s1_crossed)",
       "s1_quotable = s1_both & (co.legacy & ~s1_crossed)", "legacy stops quoting uncrossed books"),
    _p("both-or", "s1_both.eq(upd.has_bid & upd.has_ask)", "s1_both.eq(upd.has_bid | upd.has_ask)",
       "one side present counts as a mid"),
    _p("eligible-unarmed", "timer.eligible.eq(valid[0] & s1_armed & s1_quotable)",
       "timer.eligible.eq(valid[0] & s1_quotable)", "the refresh decision ignores armed"),
    _p("bid-window-lo-strict", "s1_p >= co.bid_lo[j]", "s1_p > co.bid_lo[j]",
       "P on a bid window's lower bound is outside it"),
    _p("bid-window-hi-inclusive", "s1_p < co.bid_hi[j]", "s1_p <= co.bid_hi[j]",
       "P on a bid window's upper bound is inside it"),
    _p("ask-window-lo-strict", "s1_p_ask >= co.ask_lo[j]", "s1_p_ask > co.ask_lo[j]",
       "P on an ask window's lower bound is outside it"),
    _p("ask-window-hi-inclusive", "s1_p_ask < co.ask_hi[j]", "s1_p_ask <= co.ask_hi[j]",
       "P on an ask window's upper bound is inside it"),
    _p("no-mid-count", "s2_count_b.eq(Mux(s1_quotable, co.bid_count, 0))",
       "s2_count_b.eq(Mux(s1_quotable, co.bid_count, 1))", "a ladder without a mid reports a bid level"),
    _p("sum-limb-sign", "+ (pp10 << LIMB)", "- (pp10 << LIMB)", "one limb product of P*m subtracted"),
    _p("x-mask", "x = Cat(s_hi[:17] & ~co.low_mask, s_hi[17:])",
       "x = Cat(s_hi[:17] | co.low_mask, s_hi[17:])", "X keeps set bits below 2**l"),
    _p("fraction-mask", "s3_f.eq(Cat(s_full[:wsum], s_hi[:17] & co.low_mask))",
       "s3_f.eq(Cat(s_full[:wsum], s_hi[:17] & ~co.low_mask))", "the fraction F takes the wrong high bits"),
    _p("bid-step-le", "below_b = s3_f < th_bid", "below_b = s3_f <= th_bid",
       "rP = kbr moves the bid a level out"),
    _p("ask-zero-gt", "s3_f >= th_zero,", "s3_f > th_zero,", "the [rP > 0] step misses F = m"),
    _p("ask-step-gt", "s3_f >= th_ask]", "s3_f > th_ask]", "the [rP > kar] step misses rP = kar + 1"),
    _p("ask-shift-xor-or", "return Cat(above[0] ^ above[1], above[0] & above[1])",
       "return Cat(above[0] | above[1], above[0] & above[1])", "ask shift 3 instead of 2 with both steps",
       "the ask shift is only read by pick3, which takes option 2 whenever bit 1 is set: with both "
       "thresholds met the shift is 3 instead of 2 and selects the same, and otherwise | equals ^"),
    _p("ask-shift-and-or", "return Cat(above[0] ^ above[1], above[0] & above[1])",
       "return Cat(above[0] ^ above[1], above[0] | above[1])", "one ask step moves the ask two levels"),
    _p("tqp-high-limb", "return lo >> 17, hi << 1", "return lo >> 17, hi << 2",
       "T*qP takes its high limb at the wrong weight"),
    _p("bid-k-arms", "Mux(shift_b_level[i], s4_bid_k[i + 1], s4_bid_k[i])",
       "Mux(shift_b_level[i], s4_bid_k[i], s4_bid_k[i + 1])", "the bid shift selects the other level"),
    _p("bid-price-sign", 'price_b = [((t_qp("bid", i)[0] - k)', 'price_b = [((t_qp("bid", i)[0] + k)',
       "bid prices above T*qP"),
    _p("bid-post-arms", "Mux(shift_b_level[i], s4_post_b[1][i], s4_post_b[0][i])",
       "Mux(shift_b_level[i], s4_post_b[0][i], s4_post_b[1][i])", "the bid posted mask of the other shift"),
    _p("bid-ood-arms", "out.out_of_domain.eq(Mux(s4_shift_b, s4_ood_b[1], s4_ood_b[0])",
       "out.out_of_domain.eq(Mux(s4_shift_b, s4_ood_b[0], s4_ood_b[1])",
       "the bid out-of-domain count of the other shift"),
    _p("ood-sum-or", "+ pick3(s4_shift_a, s4_ood_a))", "| pick3(s4_shift_a, s4_ood_a))",
       "bid and ask out-of-domain counts or-ed"),
    _p("advance-and", "advance = ~valid[4] | self.o.ready", "advance = ~valid[4] & self.o.ready",
       "the stages advance only into an empty output"),
    _p("accept-during-change", "accept = (s5_empty | self.o.ready) & ~hold & ~changed",
       "accept = (s5_empty | self.o.ready) & ~hold",
       "an update is accepted in the cycle the ports change"),
    _p("hold-early", "(settle > 1))]", "(settle > 2))]", "updates accepted a cycle before settling ends"),
    _p("load-in-flight", "load = dirty & empty", "load = dirty",
       "new coefficients taken while updates are in flight"),
    _p("settling-long", "settling.eq(settle > 1)", "settling.eq(settle > 0)",
       "the settle counter runs past zero"),
    _p("soft-reset-unwired", "timer.clear.eq(self.soft_reset)", "timer.clear.eq(0)",
       "soft reset does not reach the refresh clock"),
    _p("timer-commit-always", "timer.commit.eq(advance)", "timer.commit.eq(1)",
       "the refresh decision moves on while the pipeline stalls"),
    # -- coefficient_unit.py: the slow path ---------------------------------------------
    _c("neg-le", 'neg = reg("neg", 1, pos < 0)', 'neg = reg("neg", 1, pos <= 0)',
       "position 0 taken as negative",
       "differs only at position 0, where a = 0, so z = 0 and exact = 1: ceil_w = ~0 + 1 = 0, "
       "floor_w = ~0 + exact = 0 and skew_ticks = -0 = 0, the values neg = 0 gives"),
    _c("abs-sign", "Mux(pos < 0, -pos, pos))", "Mux(pos > 0, -pos, pos))", "|position| negated"),
    _c("xb1-sign", 'xb1 = reg("xb1", signed(18), m_inv - pos)', 'xb1 = reg("xb1", signed(18), m_inv + pos)',
       "bid headroom M + position"),
    _c("t768", "(t << 9) + (t << 8)", "(t << 9) + (t << 7)", "dividend offset 640T instead of 768T"),
    _c("m-nonzero", "m_inv != 0", "m_inv == 0", "M = 0 quotes, M > 0 does not"),
    _c("in-n-le", "1, i < n_lv)", "1, i <= n_lv)", "one level more than num_levels"),
    _c("clamp-le", "Mux(abs_pos < m_inv, abs_pos, m_inv)", "Mux(abs_pos <= m_inv, abs_pos, m_inv)",
       "min(|pos|, M) with <=", "at |position| = M both arms are the same value"),
    _c("clamp-max", "Mux(abs_pos < m_inv, abs_pos, m_inv)", "Mux(abs_pos > m_inv, abs_pos, m_inv)",
       "max(|pos|, M) instead of min"),
    _c("ln-legacy", "Mux(legacy, 1, bitlen + 1)", "Mux(legacy, 2, bitlen + 1)", "legacy divides by 4"),
    _c("xb-live-sign", "xb1 - self.live_bid)", "xb1 + self.live_bid)", "live bids add headroom"),
    _c("qmax-wide", "Mux(legacy, w.price_max, qmax) + 1)", "Mux(legacy, w.price_max, qmax) + 2)",
       "price-domain windows one step too wide"),
    _c("legacy-bid-ge", "xb1 > 0)", "xb1 >= 0)", "legacy bids at position = M"),
    _c("prod-or", "interleave(0) + (interleave(1) << LIMB)", "interleave(0) | (interleave(1) << LIMB)",
       "the skew product's limb sums lose their carries"),
    _c("exact-16", "prod[15:SKEW_COEF_SHIFT] == 0", "prod[16:SKEW_COEF_SHIFT] == 0",
       "exactness tested below 2**16 instead of 2**15",
       "docs/datapath.md: an exact a*c leaves t mod 2**47 = a*eps < 2**15, an inexact one at least "
       "2**47 / D > 2**16 (D = M * 65536 < 2**31), so bits 15 and 16 both separate the two"),
    _c("exact-14", "prod[15:SKEW_COEF_SHIFT] == 0", "prod[14:SKEW_COEF_SHIFT] == 0",
       "exactness tested below 2**14: a*eps can reach 2**14 at large positions"),
    _c("recip-round-down", "m_host + m_round)", "m_host - m_round)", "normalized reciprocal rounded down"),
    _c("ceil-w", "zs + Mux(neg, 1, ~exact))", "zs + Mux(neg, 1, exact))", "ceil(w) of a long position wrong"),
    _c("floor-w", "zs + Mux(neg, exact, 0))", "zs + Mux(neg, ~exact, 0))", "floor(w) of a short position wrong"),
    _c("div-ok-strict", "ok = trial >= 0", "ok = trial > 0", "an exact division step not taken"),
    _c("kbq-offset", 'kbq = reg("kbq", signed(12), qb - off)', 'kbq = reg("kbq", signed(12), qb - (off + 1))',
       "kbq one too small"),
    _c("kar1", 'kar1 = reg("kar1", 18, ra + 1)', 'kar1 = reg("kar1", 18, ra + 0)',
       "[rP > kar] becomes [rP >= kar]"),
    _c("legacy-half", "half = bt >> 1", "half = bt >> 2", "legacy half spread B*T/4"),
    _c("legacy-bid-skew", 'lb0 = reg("lb0", signed(ow), half + skew_raw)',
       'lb0 = reg("lb0", signed(ow), half - skew_raw)', "legacy bid skew sign"),
    _c("max-ge", "1, a > b), a_q, b_q))", "1, a >= b), a_q, b_q))", "max by >=",
       "at a = b both arms are the same value (a_q and b_q are registered with the comparison)"),
    _c("ask-edge-step", 'oa1 = staged_max("oa1", nkaq, e1)', 'oa1 = staged_max("oa1", nkaq, e_s)',
       "the [rP > 0] step loses its min-edge tick"),
    _c("ask-shift2-legacy", 'ask_shift2 = reg("ask_shift2", 1, ~legacy & (oa2 != oa1))',
       'ask_shift2 = reg("ask_shift2", 1, oa2 != oa1)', "legacy asks may step a level out"),
    _c("legacy-window-offset", "Mux(legacy, off_b << 1, od_b)", "Mux(legacy, off_b << 2, od_b)",
       "legacy bid windows at twice the offset"),
    _c("bid-window-lo-base", 'lop0_b = reg("lop0_b", signed(db), odb + d_eff)',
       'lop0_b = reg("lop0_b", signed(db), odb + 1)', "bid windows admit the price 0"),
    _c("window-step-legacy", 'chain("lstep", reg("lstep_0", w.step_bits, 0), d, w.step_bits, na)',
       'chain("lstep", reg("lstep_0", w.step_bits, 0), d_eff, w.step_bits, na)',
       "legacy windows step by 2 instead of 2T per level"),
    _c("bound-floor-1", "Mux(negative, 0, Mux(beyond, span, raw[:w.bound_bits]))",
       "Mux(negative, 1, Mux(beyond, span, raw[:w.bound_bits]))", "negative bounds clamped to 1",
       "a bound of 1 instead of 0 changes P >= bound or P < bound only at P = 0; with a quotable "
       "mid both prices are at least 1 (P >= 2), and without one every level is gated off"),
    _c("bound-ceiling-low", "Mux(negative, 0, Mux(beyond, span, raw[:w.bound_bits]))",
       "Mux(negative, 0, Mux(beyond, span - 2, raw[:w.bound_bits]))",
       "bounds beyond the top clamped to 2*PMAX"),
    _c("fits-gt", "xb >= sizes[i]))", "xb > sizes[i]))", "a level that exactly fits the limit is gated"),
    _c("gate-needs-m", 'bid_gate.append(reg(f"gate_b{i}", 1, m_nz & in_n[i] & gb))',
       'bid_gate.append(reg(f"gate_b{i}", 1, in_n[i] & gb))', "M = 0 may post bids"),
    _c("size-limit-at-equal", "(self.cfg.order_size > moq)", "(self.cfg.order_size >= moq)",
       "the size limit blocks an order_size equal to max_order_qty"),
    _c("never-half", "never = 1 << w.frac_bits", "never = 1 << (w.frac_bits - 1)",
       "a disabled step's threshold within reach of F"),
    # -- refresh_timer.py: docs/spec.md §6.1 ----------------------------------------------
    _r("reached-strict", "Cat(self.ts, Const(0, 1), self.eligible) >= Cat(",
       "Cat(self.ts, Const(0, 1), self.eligible) > Cat(",
       "an update exactly on the deadline (stored, or one interval after the refresh ahead) does not refresh"),
    _r("reached-arms", "now = Mux(pending_n, deadline, fired_plus)", "now = Mux(pending_n, fired_plus, deadline)",
       "pending and stored deadline swapped"),
    _r("fire-ineligible", ">= Cat(now, Const(1, 1))", ">= Cat(now, Const(0, 1))", "ineligible updates refresh"),
    _r("pending-never", "pending.eq(self.fire), pending_n.eq(~self.fire),", "pending.eq(0), pending_n.eq(1),",
       "a refresh is never taken over by the clock"),
    _r("clear-deadline-arms", "deadline.eq(Mux(self.legacy, self.interval, 0))",
       "deadline.eq(Mux(self.legacy, 0, self.interval))", "soft reset starts the wrong policy's clock"),
    _r("clear-keeps-last", "pending_n.eq(1), last.eq(0), quoted.eq(0),",
       "pending_n.eq(1), last.eq(last), quoted.eq(0),",
       "soft reset keeps the last quote time (seen after a commit)"),
    _r("clear-keeps-quoted", "pending_n.eq(1), last.eq(0), quoted.eq(0),",
       "pending_n.eq(1), last.eq(0), quoted.eq(quoted),",
       "soft reset keeps 'has refreshed' (seen after a commit)"),
    _r("clear-keeps-pending", "[pending.eq(0), pending_n.eq(1), last.eq(0),",
       "[pending.eq(pending), pending_n.eq(pending_n), last.eq(0),",
       "a refresh decided before a soft reset is taken over after it"),
    _r("takeover-ts", "last.eq(fired_ts), quoted.eq(1)", "last.eq(self.ts), quoted.eq(1)",
       "the clock stores the wrong update's time"),
    _r("takeover-unquoted", "quoted.eq(1), deadline.eq(fired_plus)", "quoted.eq(0), deadline.eq(fired_plus)",
       "a refresh does not mark the clock as started"),
    _r("settle-deadline-and", "Mux(self.legacy | quoted, last + self.interval, 0)",
       "Mux(self.legacy & quoted, last + self.interval, 0)", "a settle restarts legacy's clock at 0"),
    _r("settle-deadline-interval", "last + self.interval, 0))", "self.interval, 0))",
       "a settle forgets the last quote time"),
    # -- arith.py: popcount and limbs ----------------------------------------------------
    _a("chunk-3", "chunk = Cat(*flat[k : k + 4])", "chunk = Cat(*flat[k : k + 3])",
       "every fourth bit is not counted"),
    _a("table-width", 'Const(bin(v).count("1"), 3)', 'Const(bin(v).count("1"), 2)',
       "a chunk of four set bits counts 0"),
    _a("pair-or", "terms[k] + terms[k + 1]", "terms[k] | terms[k + 1]", "partial counts or-ed"),
    _a("odd-chunk-dropped", "terms = pairs + terms[len(pairs) * 2 :]", "terms = pairs",
       "the last of an odd number of chunks is dropped"),
    _a("limb-short", "value[i : i + LIMB]", "value[i : i + LIMB - 1]", "limbs lose their top bit"),
    # -- top.py: control, arbitration, capture, refresh state, counters --------------------
    _t("disarm-and", "with m.If(ctl.soft_reset | ctl.disarm):", "with m.If(ctl.soft_reset & ctl.disarm):",
       "disarm alone does not disarm"),
    _t("arm-while-killed", "with m.If(ctl.arm & ~killed):", "with m.If(ctl.arm):",
       "arm overrides the kill switch"),
    _t("kill-arms", "m.d.sync += [killed.eq(1), armed.eq(0)]", "m.d.sync += [killed.eq(1), armed.eq(1)]",
       "kill leaves the engine armed"),
    _t("rearm-keeps-kill", "m.d.sync += [killed.eq(0), armed.eq(1), deadman_killed.eq(0)]",
       "m.d.sync += [killed.eq(1), armed.eq(1), deadman_killed.eq(0)]", "rearm does not clear the kill latch"),
    _t("kill-leaks-stream", "pipe.kill.eq(killed)", "pipe.kill.eq(ctl.kill)",
       "the latched kill does not block the stream"),
    _t("deadman-early", "& (elapsed_us == timeout_us)", "& (elapsed_us == timeout_us - 1)",
       "the dead-man timer fires a microsecond early"),
    _t("ts-arms", "chosen.ts.eq(Mux(pending, pending_update.ts, self.i.payload.ts))",
       "chosen.ts.eq(Mux(pending, self.i.payload.ts, pending_update.ts))", "the wrong update's ts enters"),
    _t("price-select", "sel_prices = ~pending_n", "sel_prices = pending_n", "the prices of the wrong update"),
    _t("ready-ignores-pending", "self.i.ready.eq(~pending & front_ready)", "self.i.ready.eq(front_ready)",
       "the stream is accepted while a submit enters"),
    _t("accepted-and", "accepted.eq((pending | self.i.valid) & front_ready)",
       "accepted.eq((pending & self.i.valid) & front_ready)", "updates counted only when both paths offer"),
    _t("front-ready-and", "front_ready.eq(~in_valid | pipe.i.ready)", "front_ready.eq(~in_valid & pipe.i.ready)",
       "the input register takes an update only when empty and the pipeline is ready"),
    _t("input-register-drops-submit", "in_valid.eq(pending | self.i.valid)", "in_valid.eq(self.i.valid)",
       "the input register drops register submits"),
    _t("is-next-offset", "(delivered_seq + 1)[:seq_bits] == target_seq",
       "(delivered_seq + 2)[:seq_bits] == target_seq", "the capture looks one ladder too far"),
    _t("target-seq", "target_seq.eq(accepted_seq)]", "target_seq.eq(accepted_seq + 1)]",
       "the capture waits for the next update's ladder"),
    _t("soft-reset-keeps-capture", "m.d.sync += [waiting.eq(0), ladder_valid.eq(0), captured.eq(0)]",
       "m.d.sync += [waiting.eq(0), ladder_valid.eq(0)]", "soft reset keeps the captured ladder"),
    _t("lqt-any-ladder", "with m.If(delivered & ladder.refresh):", "with m.If(delivered | ladder.refresh):",
       "LAST_QUOTE_TIME follows every ladder"),
    _t("hard-reset-keeps-lqt", "with m.If(reset_q):", "with m.If(0):",
       "reset keeps LAST_QUOTE_TIME and the captured ladder"),
    _t("hard-reset-keeps-counters", "clear.eq(ctl.soft_reset | ctl.clear_counters | reset_q)",
       "clear.eq(ctl.soft_reset | ctl.clear_counters)", "reset keeps the counters"),
    _t("reset-copy-stuck", "m.d.sync += reset_q.eq(ResetSignal())", "m.d.sync += reset_q.eq(0)",
       "the registered reset copy never follows a reset"),
    _t("counter-or", "counter.eq(counter + events[reg.name])", "counter.eq(counter | events[reg.name])",
       "counters or instead of add"),
    _t("event-while-stalled", "counts = delivered if spec.when is None else delivered & spec.when(",
       "counts = delivered if spec.when is None else pipe.o.valid & spec.when(",
       "a conditional ladder counter counts every stalled cycle"),
    _t("ladders-while-stalled", "counts = delivered if", "counts = pipe.o.valid if",
       "ladder counters count every stalled cycle"),
    _t("updates-count-ladders", "value = accepted", "value = delivered", "COUNT_UPDATES counts ladders"),
    _t("error-all-bits", "events[f.set_by].any())", "events[f.set_by].all())",
       "ERRORS.out_of_domain only for all-ones counts"),
    _t("commit-unwired", "pipe.config_changed.eq(rb.committed)", "pipe.config_changed.eq(0)",
       "the pipeline never sees a commit"),
    _t("settled-stuck", "m.d.sync += settled.eq(pipe.settled)", "m.d.sync += settled.eq(1)",
       "STATUS.settled always high"),
    _t("soft-reset-unwired", "m.d.comb += pipe.soft_reset.eq(ctl.soft_reset)",
       "m.d.comb += pipe.soft_reset.eq(0)", "soft reset does not reach the pipeline"),
)


class StaleMutant(ValueError):
    """A catalogue entry whose snippet does not occur exactly once in its file."""


def apply_mutant(source: str, mutant: Mutant) -> str:
    """``source`` with the mutant's snippet replaced; :class:`StaleMutant` unless it occurs once."""
    found = source.count(mutant.find)
    if found != 1:
        raise StaleMutant(f"{mutant.name}: {mutant.find!r} occurs {found} times in {mutant.path}, not once")
    return source.replace(mutant.find, mutant.replace)


def stale_mutants(root: Path, mutants: Iterable[Mutant] = CATALOGUE) -> dict[str, str]:
    """Name -> reason for every entry that does not apply to the sources under ``root``."""
    stale = {}
    for m in mutants:
        try:
            apply_mutant((root / m.path).read_text(encoding="utf-8"), m)
        except (StaleMutant, OSError) as exc:
            stale[m.name] = str(exc)
    return stale


def select(patterns: Sequence[str], mutants: Iterable[Mutant] = CATALOGUE) -> list[Mutant]:
    """The mutants whose name matches one of ``patterns`` (a glob or a substring); all without."""
    if not patterns:
        return list(mutants)
    return [m for m in mutants if any(fnmatch.fnmatchcase(m.name, p) or p in m.name for p in patterns)]


# -- the probe: loaded into every run as a pytest plugin ------------------------------------------


def pytest_configure(config: object) -> None:
    """Record which files the gateware modules were imported from, and their hashes.

    Does nothing outside ``nanoquote mutate`` (the probe's environment is not set).
    """
    out = os.environ.get(_PROBE_ENV)
    if not out:
        return
    import importlib

    import nanoquote

    record: dict[str, dict[str, str]] = {
        "nanoquote": {"file": str(Path(nanoquote.__file__).resolve())},
        "nanoquote.sim.mutation": {"file": str(Path(__file__).resolve())},
    }
    for path in TARGET_FILES:
        name = "nanoquote." + path.removesuffix(".py").replace("/", ".")
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a mutant may break the import: the tests will fail on it
            record[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        file = Path(module.__file__).resolve()
        record[name] = {"file": str(file), "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    Path(out).write_text(json.dumps(record, indent=1), encoding="utf-8")


# -- a copy of the tree the tests import ----------------------------------------------------------


class ProbeError(RuntimeError):
    """A run did not import the copy it was meant to test: no verdict can be trusted."""


@dataclass
class RunOutcome:
    """What one pytest run in a copy said."""

    verdict: str  # killed, timeout, survived, error
    seconds: float
    returncode: int | None
    failed: str  # the first failing test, when there is one
    tail: str  # the end of the run's output
    probe: dict = field(default_factory=dict)


class Workspace:
    """A temporary copy of the source tree, importable as ``nanoquote``, for one run at a time."""

    def __init__(self, checkout: Path, parent: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nanoquote-mutate-", dir=parent))
        self.src = self.dir / "src"
        self.pkg = self.dir / "pkg"
        self.src.mkdir()
        for name in _COPIED:
            source = checkout / name
            if source.is_dir():
                shutil.copytree(source, self.src / name, ignore=_IGNORED, symlinks=True)
            elif source.exists():
                shutil.copy2(source, self.src / name)
        package = self.pkg / "nanoquote"
        package.mkdir(parents=True)
        for module in (self.src / "nanoquote").glob("*.py"):
            (package / module.name).symlink_to(module)
        for sub in ("hw", "sim", "host"):
            (package / sub).symlink_to(self.src / sub, target_is_directory=True)
        self.originals = {p: (self.src / p).read_text(encoding="utf-8") for p in TARGET_FILES}

    def write(self, path: str, text: str) -> None:
        (self.src / path).write_text(text, encoding="utf-8")

    def apply(self, mutant: Mutant) -> str:
        """Mutate the copy (from its pristine text); returns the mutated file's text."""
        text = apply_mutant(self.originals[mutant.path], mutant)
        self.write(mutant.path, text)
        return text

    def restore(self) -> None:
        for path, text in self.originals.items():
            if (self.src / path).read_text(encoding="utf-8") != text:
                self.write(path, text)
        shutil.rmtree(self.src / ".hypothesis", ignore_errors=True)  # no examples carried over

    def env(self, probe: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.pkg), *filter(None, [env.get("PYTHONPATH")])])
        # ``python -m`` would put the working directory first, whose ``nanoquote/`` lacks ``hw``,
        # ``sim`` and ``host``: those would then come from the checkout through the editable finder
        env["PYTHONSAFEPATH"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant of the same size and second must not hit a stale .pyc
        env[_PROBE_ENV] = str(probe)
        return env

    def pytest(self, tests: Sequence[str], marker: str, timeout: float, *, exit_first: bool = True,
               collect_only: bool = False) -> RunOutcome:
        """Run ``tests`` in the copy; the verdict is from the exit status and the output."""
        probe = self.dir / "probe.json"
        probe.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nanoquote.sim.mutation",
               "-m", marker, *(["-x"] if exit_first else []), *(["--collect-only"] if collect_only else []),
               *tests]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.src, env=self.env(probe), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the run's own process group, started above
            output, _ = proc.communicate()
            code = None
        seconds = time.monotonic() - start
        record = json.loads(probe.read_text(encoding="utf-8")) if probe.exists() else {}
        failed = next(iter(re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)), "")
        if code is None:
            verdict = "timeout"
        elif code == 0:
            verdict = "survived"
        elif code in (1, 2) and (failed or code == 1):
            verdict = "killed"  # 1: tests failed; 2: interrupted by a collection error
        else:
            verdict = "error"
        return RunOutcome(verdict, seconds, code, failed, output[-3000:], record)

    def check_probe(self, outcome: RunOutcome, mutated: dict[str, str] | None = None) -> None:
        """Raise :class:`ProbeError` unless the run imported this copy (and ``mutated``: path ->
        the text written there)."""
        record = outcome.probe
        if not record:
            raise ProbeError(f"the run wrote no probe record (exit {outcome.returncode}):\n{outcome.tail}")
        src = self.src.resolve()
        for name, entry in record.items():
            if "error" in entry:
                continue
            if not Path(entry["file"]).is_relative_to(src):
                raise ProbeError(f"{name} was imported from {entry['file']}, not from the copy {src}")
        for path, text in (mutated or {}).items():
            name = "nanoquote." + path.removesuffix(".py").replace("/", ".")
            entry = record.get(name, {})
            want = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if "error" not in entry and entry.get("sha256") != want:
                raise ProbeError(f"{name}: the run imported {entry.get('file')} whose content is not the mutant's")

    def self_check(self, tests: Sequence[str], marker: str, timeout: float) -> None:
        """A deliberately broken copy must be what the run imports, and must fail."""
        path = "hw/gateware/pipeline.py"
        self.write(path, self.originals[path] + _SABOTAGE)
        try:
            outcome = self.pytest(tests[:1], marker, timeout, collect_only=True)
        finally:
            self.restore()
        entry = outcome.probe.get("nanoquote.hw.gateware.pipeline", {})
        if "self-check" not in entry.get("error", "") or outcome.returncode == 0:
            raise ProbeError("a broken copy of hw/gateware/pipeline.py was not what the run imported "
                             f"(probe {entry or 'missing'}, exit {outcome.returncode}):\n{outcome.tail}")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# -- results ------------------------------------------------------------------------------------


@dataclass
class Result:
    """The verdict on one catalogue entry."""

    name: str
    path: str
    description: str
    verdict: str  # killed, timeout, survived, error, stale, skipped
    seconds: float = 0.0
    failed: str = ""
    equivalent: str = ""
    detail: str = ""

    @property
    def caught(self) -> bool:
        return self.verdict in ("killed", "timeout")


@dataclass
class Summary:
    """The figures of a run (docs/performance.md, "Mutation testing")."""

    tried: int
    killed: int
    timeout: int
    survived: int
    equivalent: int
    errors: int
    stale: int
    equivalent_killed: list[str]
    survivors: list[str]
    score: float


def summarize(results: Sequence[Result]) -> Summary:
    """Score = killed (timeouts included) / (tried - equivalent); stale entries are not tried."""
    tried = [r for r in results if r.verdict not in ("stale",)]
    judged = [r for r in tried if not r.equivalent]
    caught = [r for r in judged if r.caught]
    return Summary(
        tried=len(tried),
        killed=sum(r.verdict == "killed" for r in judged),
        timeout=sum(r.verdict == "timeout" for r in judged),
        survived=sum(r.verdict == "survived" for r in judged),
        equivalent=sum(bool(r.equivalent) for r in tried),
        errors=sum(r.verdict == "error" for r in tried),
        stale=sum(r.verdict == "stale" for r in results),
        equivalent_killed=[r.name for r in tried if r.equivalent and r.caught],
        survivors=[r.name for r in judged if r.verdict == "survived"],
        score=len(caught) / len(judged) if judged else 1.0,
    )


def exit_status(summary: Summary, goal: float) -> int:
    """0 when the score reaches ``goal`` and nothing is stale, erred or contradicts an argument."""
    ok = (summary.score >= goal and not summary.stale and not summary.errors
          and not summary.equivalent_killed)
    return 0 if ok else 1


# -- the command ------------------------------------------------------------------------------------


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the catalogue (stale entries marked) and exit")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="run only mutants whose name matches (glob or substring; repeatable)")
    parser.add_argument("--goal", type=_fraction, default=0.95, help="score needed for exit status 0")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), metavar="PATH",
                        help="test files or folders of the tier (default: the gateware's fast tests)")
    parser.add_argument("--marker", default=DEFAULT_MARKER, help="pytest marker expression of the tier")
    parser.add_argument("--timeout", type=_positive, default=None, metavar="SECONDS",
                        help="per-mutant timeout (default: twice the baseline run + 30 s)")
    parser.add_argument("--jobs", type=count, default=1, help="mutants run side by side (each in its own copy)")
    parser.add_argument("--skip-equivalent", action="store_true",
                        help="do not run the mutants the catalogue argues equivalent")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the report as JSON")


def _checkout() -> Path:
    return Path(__file__).resolve().parents[1]


def _print(line: str) -> None:
    print(line, flush=True)


def _list(stale: dict[str, str]) -> int:
    for m in CATALOGUE:
        marks = (" [stale]" if m.name in stale else "") + (" [equivalent]" if m.equivalent else "")
        _print(f"{m.name:40s} {m.path:34s} {m.description}{marks}")
    _print(f"catalogue version {CATALOGUE_VERSION}: {len(CATALOGUE)} mutants, "
           f"{sum(bool(m.equivalent) for m in CATALOGUE)} argued equivalent, {len(stale)} stale")
    return 1 if stale else 0


def run(args: argparse.Namespace) -> int:
    checkout = _checkout()
    stale = stale_mutants(checkout)
    if args.list:
        return _list(stale)
    chosen = select(args.only)
    if not chosen:
        print(f"nanoquote mutate: error: no mutant matches {args.only}", file=sys.stderr)
        return 2
    wall = time.monotonic()
    workspaces: Queue[Workspace] = Queue()
    created: list[Workspace] = []
    try:
        first = Workspace(checkout)
        created.append(first)
        first.self_check(args.tests, args.marker, timeout=300)
        _print(f"self-check: a broken copy is what the runs import ({first.src})")
        baseline = first.pytest(args.tests, args.marker, timeout=args.timeout or 3600, exit_first=False)
        first.check_probe(baseline)
        if baseline.verdict != "survived":
            print(f"nanoquote mutate: error: the unmutated copy fails the tier ({baseline.failed or 'exit '}"
                  f"{'' if baseline.failed else baseline.returncode}):\n{baseline.tail}", file=sys.stderr)
            return 2
        timeout = args.timeout or 2 * baseline.seconds + 30
        _print(f"baseline: tier passes in {baseline.seconds:.1f} s; timeout per mutant {timeout:.0f} s; "
               f"{len(chosen)} mutants, catalogue version {CATALOGUE_VERSION}")
        workspaces.put(first)
        for _ in range(1, min(args.jobs, len(chosen))):
            ws = Workspace(checkout)
            created.append(ws)
            workspaces.put(ws)
        lock = threading.Lock()
        done = [0]

        def judge(mutant: Mutant) -> Result:
            result = Result(mutant.name, mutant.path, mutant.description, "stale", equivalent=mutant.equivalent)
            if mutant.name in stale:
                result.detail = stale[mutant.name]
            elif mutant.equivalent and args.skip_equivalent:
                result.verdict = "skipped"
            else:
                ws = workspaces.get()
                try:
                    text = ws.apply(mutant)
                    outcome = ws.pytest(args.tests, args.marker, timeout)
                    ws.check_probe(outcome, {mutant.path: text})
                finally:
                    ws.restore()
                    workspaces.put(ws)
                result.verdict, result.seconds, result.failed = outcome.verdict, outcome.seconds, outcome.failed
                if outcome.verdict == "error":
                    result.detail = outcome.tail
            with lock:
                done[0] += 1
                note = " (argued equivalent)" if mutant.equivalent else ""
                where = f"  {result.failed}" if result.failed else ""
                _print(f"[{done[0]:3d}/{len(chosen)}] {mutant.name:40s} {result.verdict:8s} "
                       f"{result.seconds:6.1f} s{note}{where}")
            return result

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(judge, chosen))
    except ProbeError as exc:
        print(f"nanoquote mutate: error: the tests did not import the copy: {exc}", file=sys.stderr)
        return 2
    finally:
        for ws in created:
            ws.remove()
    wall = time.monotonic() - wall
    results = [r for r in results if r.verdict != "skipped"]
    summary = summarize(results)
    _report(summary, results, wall, args.goal)
    if args.json is not None:
        report = {"catalogue_version": CATALOGUE_VERSION, "tests": list(args.tests), "marker": args.marker,
                  "baseline_seconds": round(baseline.seconds, 1), "timeout_seconds": round(timeout, 1),
                  "wall_seconds": round(wall, 1), "goal": args.goal, "summary": asdict(summary),
                  "mutants": [asdict(r) for r in results]}
        try:
            write_text_file(args.json, json.dumps(report, indent=2) + "\n", make_parents=True)
        except OSError as exc:
            print(f"nanoquote mutate: error: {describe_os_error(exc, args.json)}", file=sys.stderr)
            return 2
    return exit_status(summary, args.goal)


def _report(summary: Summary, results: Sequence[Result], wall: float, goal: float) -> None:
    judged = summary.tried - summary.equivalent
    _print(f"mutants: {summary.tried} tried, {summary.killed + summary.timeout} killed "
           f"({summary.timeout} by timeout), {summary.survived} survived, {summary.equivalent} equivalent, "
           f"{summary.errors} errors, {summary.stale} stale")
    _print(f"score: {summary.killed + summary.timeout}/{judged} = {summary.score:.3f} (goal {goal:.2f}); "
           f"wall time {wall:.0f} s")
    for name in summary.survivors:
        _print(f"survived: {name}")
    for name in summary.equivalent_killed:
        _print(f"argued equivalent but killed (the argument is wrong): {name}")
    for r in results:
        if r.verdict in ("stale", "error"):
            _print(f"{r.verdict}: {r.name}: {r.detail.strip().splitlines()[-1] if r.detail.strip() else ''}")
