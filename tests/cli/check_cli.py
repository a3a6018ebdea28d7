#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""thagtrace-merge and thagtrace-report end to end (the `cli` test).

usage: check_cli.py MERGE REPORT DUMP GOLDEN_MERGE_DIR [GOLDEN_V1_DIR]

1. tests/data/golden-merge (made by make_golden_merge, see its README.md): the
   tools' outputs equal expected/ byte for byte, and the figures equal those a
   small model of the estimator (below, from the events the generator wrote and
   the rule at the top of src/analysis/estimate.c) computes, so a wrong golden
   cannot hide a bug. The golden-v1 trace is checked against the same model.
2. The JSON contract of the design brief; --top/--by; --diff with itself;
   summary.json equals --json.
3. Bad input and usage errors for both tools: exit 1 (2 for usage) with
   "TOOL: FILE: offset N: what", never a crash or a hang; a cut file still merges
   and says it was truncated.
4. profile.pb.gz is a gzip'd protobuf; `go tool pprof` reads it when go exists.

The tools run with the trace directory's copy in a temporary folder as the
working directory and "golden-merge" as DIR, so the paths they print (the text
header, the JSON "dir" field) are the same on every machine: nothing is
normalized. Prints one "FAIL: ..." line per failed check; exits 1 if any.
Standard library only.
"""
import difflib
import gzip
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 20  # seconds per tool run: more is a hang
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def run(args, cwd, timeout=TIMEOUT, env=None):
    """Run a tool; returns (rc, stdout, stderr), rc None when it hung or crashed."""
    try:
        p = subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        fail("%s: no answer after %d s (hang)" % (" ".join(args), timeout))
        return None, "", ""
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0 or p.returncode >= 128:
        fail("%s: crashed (exit %d): %s" % (" ".join(args), p.returncode, err.strip()[:300]))
        return None, out, err
    return p.returncode, out, err


# ---- 1. the estimator's model ---------------------------------------------------

Z95 = 1.959963984540054


def wilson(k, n):
    """Wilson score interval of a share k/n at 95 %; [0, 1] when n is 0."""
    if n == 0:
        return 0.0, 1.0
    z2 = Z95 * Z95
    q = k / n
    mid = (q + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(q * (1 - q) / n + z2 / (4 * n * n))
    return (0.0 if k == 0 else max(0.0, mid - half)), (1.0 if k == n else min(1.0, mid + half))


def sums(items):
    """(certain, ht, var, raw, k) over (x, p) pairs: p = 1 exact, p < 1 sampled."""
    c = ht = var = raw = 0.0
    k = 0
    for x, p in items:
        if p >= 1:
            c += x
        else:
            ht += x / p
            var += x * x * (1 - p) / (p * p)
            raw += x
            k += 1
    return c, ht, var, raw, k


def part(exact, site, prt, whole):
    """docs/estimation.md, "Intervals": (estimate, lo, hi) of a part of a site."""
    sc, sht, svar, sraw, sk = site
    pc, pht, pvar, praw, pk = prt
    u = max(0.0, exact - sc)
    hard_lo, hard_hi = praw, max(praw, u - max(0.0, sraw - praw))
    if whole:
        est, lo, hi = u, (u * wilson(sk, sk)[0] if sk else 0.0), u
    elif sht > 0 and sk > 0:
        r = pht / sht
        est = u * r
        sd = Z95 * math.sqrt(max(0.0, (u / sht) ** 2 * ((1 - r) ** 2 * pvar + r * r * (svar - pvar))))
        lo, hi = est - sd, est + sd
        wl, wh = wilson(pk, sk)
        if pk:
            lo, hi = min(lo, est * wl * sk / pk), max(hi, est * wh * sk / pk)
        else:
            lo, hi = min(lo, 0.0), max(hi, u * wh)
    else:
        est, lo, hi = 0.0, 0.0, u
    est = min(max(est, hard_lo), hard_hi)
    lo = min(max(lo, hard_lo), est)
    hi = max(min(hi, hard_hi), est)
    return pc + est, pc + lo, pc + hi


def model(events, freq):
    """Expected figures from known events, by docs/estimation.md written again.

    events: (ts, tid, "alloc", ptr, size, leaf, p) or (ts, tid, "free", ptr), the
    stacks named by their leaf (= call site); one stack per site. freq: {site:
    (calls, bytes)} summed over threads. Per stack: p = 1 blocks exact, the rest of
    the site's exact total shared by the HT sums (here all of it: one stack); live
    at the end and at the peak (the moment the live total's 95 % low bound, HT sum
    minus 1.96 sd, is highest; the end instead where it holds more, calibrated) the
    same with the blocks live then.
    """
    st = {}
    live = {}  # ptr -> (leaf, size, p)
    cur = var = 0.0
    peak_lo, peak_hi, peak_live = None, 0.0, {}
    for ev in sorted(events):
        if ev[2] == "alloc":
            _, tid, _, ptr, size, leaf, p = ev
            s = st.setdefault(leaf, dict(items=[], tids=set()))
            s["items"].append((size, p))
            s["tids"].add(tid)
            live[ptr] = (leaf, size, p)
            cur += size / p
            var += size * size * (1 - p) / (p * p)
            sd = Z95 * math.sqrt(max(var, 0.0))
            peak_hi = max(peak_hi, cur + sd)
            if peak_lo is None or cur - sd > peak_lo:
                peak_lo, peak_live = cur - sd, dict(live)
        else:
            gone = live.pop(ev[3], None)
            if gone:
                cur -= gone[1] / gone[2]
                var -= gone[1] ** 2 * (1 - gone[2]) / gone[2] ** 2
    res = {}
    for leaf, s in st.items():
        calls, nbytes = freq[leaf]
        sb = sums(s["items"])
        sc = sums((1, p) for _, p in s["items"])
        lb = sums((x, p) for (l, x, p) in live.values() if l == leaf)
        lc = sums((1, p) for (l, x, p) in live.values() if l == leaf)
        pb = sums((x, p) for (l, x, p) in peak_live.values() if l == leaf)
        pc = sums((1, p) for (l, x, p) in peak_live.values() if l == leaf)
        ab = part(nbytes, sb, sb, True)
        live_b = part(nbytes, sb, lb, False)
        res[leaf] = dict(
            alloc_bytes=float(nbytes), alloc_count=float(calls), samples=len(s["items"]),
            alloc_bytes_ci95=[ab[1], ab[2]],
            live_bytes=live_b[0], live_bytes_ci95=[live_b[1], live_b[2]],
            live_count=part(calls, sc, lc, False)[0],
            peak_bytes=part(nbytes, sb, pb, False)[0],
            peak_count=part(calls, sc, pc, False)[0],
            threads=sorted(s["tids"]))
    tot = {k: sum(v[k] for v in res.values())
           for k in ("alloc_bytes", "alloc_count", "live_bytes", "live_count",
                     "peak_bytes", "peak_count")}
    if tot["live_bytes"] > tot["peak_bytes"]:
        # Calibrated, the end holds more than that moment: the end is the peak.
        for v in res.values():
            v["peak_bytes"], v["peak_count"] = v["live_bytes"], v["live_count"]
        tot["peak_bytes"], tot["peak_count"] = tot["live_bytes"], tot["live_count"]
    tot["samples"] = sum(v["samples"] for v in res.values())
    return res, tot


# The events make_golden_merge.c writes (its timeline comment), ticks after BASE.
S1, S2, S3 = 0x401100, 0x404400, 0x405500
MAIN, WORKER = 4242, 4243
PTR = lambda i: 0x7F0000010000 + 0x100 * i
GOLDEN_MERGE_EVENTS = [
    (100, MAIN, "alloc", PTR(1), 100, S1, 1.0),
    (200, MAIN, "alloc", PTR(2), 64, S2, 0.5),
    (300, MAIN, "alloc", PTR(3), 32, S3, 0.01),
    (400, MAIN, "alloc", PTR(4), 200, S1, 1.0),
    (500, WORKER, "alloc", PTR(5), 64, S2, 0.5),
    (600, WORKER, "free", PTR(2)),
    (650, WORKER, "alloc", PTR(6), 32, S3, 0.01),
    (700, MAIN, "free", PTR(1)),
    (800, WORKER, "free", PTR(4)),
    (900, MAIN, "alloc", PTR(7), 250, S1, 1.0),
    (1000, MAIN, "free", PTR(3)),
    (1100, WORKER, "alloc", PTR(8), 64, S2, 0.5),
    (1200, WORKER, "free", PTR(5)),
]
GOLDEN_MERGE_FREQ = {S1: (3, 550), S2: (2 + 4, 128 + 256), S3: (90 + 110, 2900 + 3300)}
GOLDEN_MERGE_THREADS = {MAIN: ("main", 550 + 128 + 2900, 3 + 2 + 90, 5, 0),
                        WORKER: ("worker", 256 + 3300, 4 + 110, 3, 2)}

# tests/make_golden.c: sizes 16 << i, probability 0.01 for i < 3, stacks a/b by
# parity, frees of i = 0 and 3 right after their allocation.
GV1_A, GV1_B = 0x401010, 0x404040
GOLDEN_V1_EVENTS = []
for _i in range(6):
    GOLDEN_V1_EVENTS.append((10 * _i, 1, "alloc", 0x1000 + _i, 16 << _i,
                             GV1_B if _i % 2 else GV1_A, 0.01 if _i < 3 else 1.0))
    if _i % 3 == 0:
        GOLDEN_V1_EVENTS.append((10 * _i + 1, 1, "free", 0x1000 + _i))
GOLDEN_V1_FREQ = {GV1_A: (3, 16 + 64 + 256), GV1_B: (3, 32 + 128 + 512)}


def close(a, b, tol=1.0):
    return isinstance(a, (int, float)) and abs(a - b) <= tol


def check_against_model(name, j, events, freq, threads=None):
    res, tot = model(events, freq)
    t = j.get("totals", {})
    for k, v in tot.items():
        check(close(t.get(k), v), "%s: totals.%s = %r, the events give %.1f" % (name, k, t.get(k), v))
    check(close(t.get("exact_bytes"), sum(b for _, b in freq.values()), 0),
          "%s: totals.exact_bytes = %r" % (name, t.get("exact_bytes")))
    by_leaf = {}
    for s in j.get("stacks", []):
        by_leaf[int(s["frames"][-1]["address"], 16)] = s
    check(sorted(by_leaf) == sorted(res), "%s: stacks by leaf %s, want %s" %
          (name, [hex(x) for x in sorted(by_leaf)], [hex(x) for x in sorted(res)]))
    for leaf, want in res.items():
        s = by_leaf.get(leaf)
        if not s:
            continue
        for k in ("alloc_bytes", "alloc_count", "live_bytes", "live_count", "peak_bytes",
                  "samples"):
            check(close(s.get(k), want[k]), "%s: stack %#x: %s = %r, the events give %.1f" %
                  (name, leaf, k, s.get(k), want[k]))
        for k in ("alloc_bytes_ci95", "live_bytes_ci95"):
            lo, hi = s.get(k, [None, None])
            check(close(lo, want[k][0]) and close(hi, want[k][1]),
                  "%s: stack %#x: %s = %r, the events give [%.1f, %.1f]" %
                  (name, leaf, k, s.get(k), want[k][0], want[k][1]))
        if threads is not None:
            check(s.get("threads") == want["threads"], "%s: stack %#x: threads %r, want %r" %
                  (name, leaf, s.get("threads"), want["threads"]))
    sites = {int(x["address"], 16): (x["calls"], x["bytes"]) for x in j.get("sites", [])}
    check(sites == freq, "%s: sites %r, want the .freq totals %r" % (name, sites, freq))
    for tid, (tname, nbytes, calls, samples, dropped) in (threads or {}).items():
        th = [x for x in j.get("threads", []) if x.get("tid") == tid]
        got = th and (th[0]["name"], th[0]["alloc_bytes"], th[0]["alloc_count"],
                      th[0]["samples"], th[0]["dropped"])
        check(got == (tname, nbytes, calls, samples, dropped),
              "%s: thread %d: %r, want %r" % (name, tid, got, (tname, nbytes, calls, samples, dropped)))
    return res


def check_golden_merge(tools, work, golden):
    merge, report = tools
    expected = os.path.join(golden, "expected")
    d = os.path.join(work, "golden-merge")
    shutil.copytree(golden, d, ignore=shutil.ignore_patterns("expected", "README.md"))
    out = os.path.join(work, "golden-merged")
    runs = {
        "report.txt": [report, "--no-symbols", "golden-merge"],
        "report.json": [report, "--json", "--no-symbols", "golden-merge"],
    }
    got = {}
    for name, args in runs.items():
        rc, o, e = run(args, work)
        if check(rc == 0, "%s: exit %r: %s" % (" ".join(args[1:]), rc, e.strip())):
            got[name] = o.encode()
    rc, o, e = run([merge, "--no-symbols", "-q", "-o", out, "golden-merge"], work)
    if check(rc == 0, "thagtrace-merge golden-merge: exit %r: %s" % (rc, e.strip())):
        for name in ("alloc_bytes.folded", "alloc_count.folded", "live_bytes.folded",
                     "peak_bytes.folded", "summary.json"):
            try:
                with open(os.path.join(out, name), "rb") as f:
                    got[name] = f.read()
            except OSError as ex:
                fail("thagtrace-merge wrote no %s: %s" % (name, ex))
    for name, data in sorted(got.items()):
        with open(os.path.join(expected, name), "rb") as f:
            want = f.read()
        if data != want:
            diff = difflib.unified_diff(want.decode().splitlines(), data.decode().splitlines(),
                                        "expected/" + name, "now", lineterm="", n=1)
            fail("golden-merge: %s differs from expected/%s:\n    %s" %
                 (name, name, "\n    ".join(list(diff)[:40])))

    # The figures, independently of the stored text.
    j = json.loads(got.get("report.json", b"{}") or b"{}")
    check_against_model("golden-merge", j, GOLDEN_MERGE_EVENTS, GOLDEN_MERGE_FREQ,
                        GOLDEN_MERGE_THREADS)
    t = j.get("totals", {})
    # By hand (README.md): 550 + 384 + 6200 bytes in 3 + 6 + 200 calls; live
    # 250 + 128 + 3200 * 6200/6400; peak: the timeline's moment (tick 100, #1
    # alone: every later moment holds p < 1 blocks whose spread lowers the live
    # total's 95 % low bound) holds 100 B calibrated, the end 3478: the end.
    for k, v in (("alloc_bytes", 7134), ("alloc_count", 209), ("live_bytes", 3478),
                 ("peak_bytes", 3478), ("samples", 8), ("dropped", 2), ("shed", 3), ("threads", 2),
                 ("processes", 1)):
        check(t.get(k) == v, "golden-merge: totals.%s = %r, want %r" % (k, t.get(k), v))
    hist = [(h["min"], h["max"], h["count"], h["bytes"]) for h in j.get("size_histogram", [])]
    check(hist == [(32, 63, 200, 6400), (64, 127, 7, 484), (128, 255, 2, 450)],
          "golden-merge: size_histogram %r" % hist)
    # Folded lines are root;...;leaf VALUE (the design brief; flamegraph.pl reads them).
    folded = got.get("alloc_bytes.folded", b"").decode()
    want_folded = ("0x403300;0x406600;0x405500 6200\n0x403300;0x402200;0x401100 550\n"
                   "0x403300;0x402200;0x404400 384\n")
    check(folded == want_folded, "golden-merge: alloc_bytes.folded is %r, want %r (frames "
          "separated by ';', root first)" % (folded, want_folded))
    text = got.get("report.txt", b"").decode()
    check("2 events lost" in text, "golden-merge: report.txt does not show the 2 dropped events")
    # A bad THAGTRACE_MERGE_THREADS is said, and changes nothing in the results.
    env = dict(os.environ, THAGTRACE_MERGE_THREADS="two")
    rc, o, e = run([report, "--json", "--no-symbols", "golden-merge"], work, env=env)
    check(rc == 0 and "THAGTRACE_MERGE_THREADS=two" in e,
          "THAGTRACE_MERGE_THREADS=two: exit %r, stderr %r (want 0 and a line naming it)"
          % (rc, e.strip()[:200]))
    check(o.encode() == got.get("report.json"),
          "THAGTRACE_MERGE_THREADS=two: the JSON report differs from the default run's")
    return d, out


def check_golden_v1(tools, work, v1):
    """The golden-v1 trace (tests/make_golden.c) merges to what its events say."""
    if not v1:
        return
    d = os.path.join(work, "golden-v1")
    os.mkdir(d)
    # The tools take <pid>.meta and <pid>-<tid>.bin/.freq; the golden files are
    # from pid = tid 7212.
    for src, dst in (("golden.meta", "7212.meta"), ("golden.bin", "7212-7212.bin"),
                     ("golden.freq", "7212-7212.freq")):
        shutil.copy(os.path.join(v1, src), os.path.join(d, dst))
    rc, o, e = run([tools[1], "--json", "--no-symbols", "golden-v1"], work)
    if check(rc == 0, "report golden-v1: exit %r: %s" % (rc, e.strip())):
        check_against_model("golden-v1", json.loads(o), GOLDEN_V1_EVENTS, GOLDEN_V1_FREQ)


# ---- 2. the JSON contract --------------------------------------------------------

CONTRACT = {
    "totals": ["alloc_bytes", "alloc_count", "live_bytes", "peak_bytes", "samples",
               "dropped", "threads", "processes"],
    "stacks": ["frames", "alloc_bytes", "alloc_bytes_ci95", "alloc_count", "live_bytes",
               "samples", "threads"],
    "frames": ["function", "file", "line", "module"],
    "sites": ["function", "file", "line", "calls", "bytes"],
    "size_histogram": ["min", "max", "count", "bytes"],
    "threads": ["tid", "name", "alloc_bytes", "alloc_count", "samples", "dropped"],
}
METRIC = {"bytes": "alloc_bytes", "count": "alloc_count", "live": "live_bytes",
          "peak": "peak_bytes"}


def keys_missing(obj, keys):
    return [k for k in keys if not isinstance(obj, dict) or k not in obj]


def check_json(tools, work, merged_out):
    merge, report = tools
    rc, o, e = run([report, "--json", "--no-symbols", "golden-merge"], work)
    if not check(rc == 0, "report --json: exit %r: %s" % (rc, e.strip())):
        return
    try:
        j = json.loads(o)
    except ValueError as ex:
        fail("report --json is not JSON: %s" % ex)
        return
    check(j.get("schema") == "thagtrace-report/1", "--json: schema %r" % j.get("schema"))
    m = keys_missing(j.get("totals"), CONTRACT["totals"])
    check(not m, "--json: totals lacks %s" % m)
    for name in ("stacks", "sites", "size_histogram", "threads"):
        lst = j.get(name)
        if not check(isinstance(lst, list) and lst, "--json: %s is %r, not a non-empty list" %
                     (name, type(lst).__name__)):
            continue
        for i, x in enumerate(lst):
            m = keys_missing(x, CONTRACT[name])
            check(not m, "--json: %s[%d] lacks %s" % (name, i, m))
            if name == "stacks":
                for k, fr in enumerate(x.get("frames", [])):
                    m = keys_missing(fr, CONTRACT["frames"])
                    check(not m, "--json: stacks[%d].frames[%d] lacks %s" % (i, k, m))
    check(len(j.get("stacks", [])) == 3, "--json without --top: %d stacks, want all 3" %
          len(j.get("stacks", [])))

    # --top N --by WHAT: the N largest by that metric, largest first (stacks with
    # none of it left out).
    for by, key in METRIC.items():
        everything = sorted((s[key] for s in j.get("stacks", []) if s[key] >= 1), reverse=True)
        for n in (1, 2, 5):
            rc, o, e = run([report, "--json", "--no-symbols", "--top", str(n), "--by", by,
                            "golden-merge"], work)
            if not check(rc == 0, "--top %d --by %s: exit %r: %s" % (n, by, rc, e.strip())):
                continue
            got = [s.get(key) for s in json.loads(o).get("stacks", [])]
            check(got == everything[:n], "--json --top %d --by %s: %s %r, want %r" %
                  (n, by, key, got, everything[:n]))
        rc, o, e = run([report, "--no-symbols", "--top", "1", "--by", by, "golden-merge"], work)
        want = "top 1 of %d" % len(everything)
        check(rc == 0 and want in o, "--top 1 --by %s (text): exit %r, no '%s'" % (by, rc, want))

    # --diff of a trace with itself: no change.
    rc, o, e = run([report, "--json", "--no-symbols", "--diff", "golden-merge", "golden-merge"],
                   work)
    if check(rc == 0, "--diff itself: exit %r: %s" % (rc, e.strip())):
        dj = json.loads(o)
        check(dj.get("totals", {}).get("delta") == 0, "--diff itself: totals %r" % dj.get("totals"))
        tot = dj.get("totals", {})
        ci = tot.get("delta_ci95")
        check(tot.get("significant") is False and isinstance(ci, list) and len(ci) == 2 and
              ci[0] <= 0 <= ci[1], "--diff itself: no change, within noise: %r" % tot)
        moved = [s for s in dj.get("stacks", []) if s.get("delta")]
        check(not moved, "--diff itself: changed stacks %r" % moved[:3])
    rc, o, e = run([report, "--no-symbols", "--diff", "golden-merge", "golden-merge"], work)
    check(rc == 0 and "(+0 B, +0.0% [" in o and "within noise)" in o,
          "--diff itself (text): exit %r:\n%s" % (rc, o))

    # summary.json is --json with no --top, "dir" aside (merge and report were both
    # given "golden-merge", so even that matches).
    try:
        with open(os.path.join(merged_out, "summary.json")) as f:
            summ = json.load(f)
        check(summ == j, "summary.json differs from report --json: keys %s" %
              sorted(k for k in set(summ) | set(j) if summ.get(k) != j.get(k)))
    except (OSError, ValueError) as ex:
        fail("summary.json: %s" % ex)


# ---- 3. bad input ----------------------------------------------------------------

def patched(golden, work, name, fn):
    """A copy of the golden trace in work/name, fn(dir) applied; returns name."""
    d = os.path.join(work, name)
    shutil.copytree(golden, d, ignore=shutil.ignore_patterns("expected", "README.md"))
    fn(d)
    return name


def edit(path, fn):
    with open(path, "rb") as f:
        b = bytearray(f.read())
    b = fn(b)
    with open(path, "wb") as f:
        f.write(b)


def check_bad_input(tools, work, golden):
    BIN = "4242-4242.bin"
    size = os.path.getsize(os.path.join(golden, BIN))
    os.mkdir(os.path.join(work, "empty"))
    os.mkdir(os.path.join(work, "emptybin"))
    open(os.path.join(work, "emptybin", "1-1.bin"), "wb").close()
    os.mkdir(os.path.join(work, "garbage"))
    with open(os.path.join(work, "garbage", "1-1.bin"), "wb") as f:
        f.write(bytes(random.Random(7).getrandbits(8) for _ in range(4096)))

    def setb(off, val):
        return lambda d: edit(os.path.join(d, BIN), lambda b: b[:off] + val + b[off + len(val):])

    def flip(off):
        def f(b):
            b[off] ^= 0xFF
            return b
        return lambda d: edit(os.path.join(d, BIN), f)

    magic = patched(golden, work, "badmagic", setb(8, b"X"))
    ver = patched(golden, work, "badversion", setb(16, b"\x09\x00"))
    metaver = patched(golden, work, "badmetaversion",
                      lambda d: edit(os.path.join(d, "4242.meta"),
                                     lambda b: b[:16] + b"\x09\x00" + b[18:]))
    corrupt = patched(golden, work, "corrupt", flip(size - 6))  # inside the last frame
    tail = patched(golden, work, "tail",
                   lambda d: edit(os.path.join(d, BIN), lambda b: b + b"garbage!"))
    cut = patched(golden, work, "cut",
                  lambda d: edit(os.path.join(d, BIN), lambda b: b[:size - 10]))

    for tool, args in ((tools[0], ["-q", "-o", os.path.join(work, "out")]),
                       (tools[1], ["--no-symbols"])):
        name = os.path.basename(tool)

        def want_error(dirname, pattern, what):
            rc, o, e = run([tool] + args + [dirname], work)
            if rc is None:
                return
            check(rc == 1 and re.match(pattern, e.strip()),
                  "%s %s (%s): exit %r, stderr %r; want exit 1 and /%s/" %
                  (name, dirname, what, rc, e.strip()[:300], pattern))

        P = re.escape(name)
        want_error("nonexistent", P + r": nonexistent: .*(No such file|not found)", "no dir")
        want_error("empty", P + r": empty: .*no thagtrace files", "empty dir")
        want_error("emptybin", P + r": emptybin: .*no thagtrace files", "only an empty .bin")
        want_error("garbage", P + r": garbage/1-1\.bin: offset 0: bad magic", "garbage")
        want_error(magic, P + r": badmagic/%s: offset 0: bad magic" % BIN, "wrong magic")
        want_error(ver, P + r": badversion/%s: offset 16: format version 9 is not supported"
                   % BIN, "wrong version")
        want_error(metaver, P + r": badmetaversion/4242\.meta: offset 16: format version 9",
                   "wrong .meta version")
        want_error(corrupt, P + r": corrupt/%s: offset \d+: corrupt" % BIN,
                   "corrupt byte in a frame")
        want_error(tail, P + r": tail/%s: offset %d: " % (BIN, size), "garbage after the frames")

        # Cut inside the last frame: merges what came before and says so (merge
        # in its summary, so without -q; report in its notes).
        rc, o, e = run([tool] + [a for a in args if a != "-q"] + [cut], work)
        if check(rc == 0, "%s cut (file cut inside a frame): exit %r, stderr %r; want 0" %
                 (name, rc, e.strip()[:300])):
            said = re.search(r"cut/%s: truncated at offset \d+" % BIN, o + e)
            check(said, "%s cut: output does not say cut/%s was truncated:\n%s" %
                  (name, BIN, (o + e)[-600:]))

        # Usage errors: exit 2 and the usage text.
        for extra in ([], ["--bogus", "golden-merge"], ["golden-merge", "golden-merge"]) + (
                (["--by", "size", "golden-merge"], ["--top", "0", "golden-merge"],
                 ["--top", "x", "golden-merge"], ["--top"], ["--pid", "abc", "golden-merge"])
                if tool == tools[1] else (["--pid", "abc", "golden-merge"], ["-o"])):
            rc, o, e = run([tool] + extra, work)
            if rc is not None:
                check(rc == 2 and "usage" in e, "%s %s: exit %r, stderr %r; want exit 2 and "
                      "'usage' on stderr" % (name, " ".join(extra), rc, e.strip()[:200]))
        rc, o, e = run([tool, "--pid", "99999", "golden-merge"], work)
        check(rc == 1 and re.match(P + r": golden-merge: no process 99999", e.strip()),
              "%s --pid 99999: exit %r, stderr %r; want 1 and 'no process 99999'" %
              (name, rc, e.strip()))
    # A fork child that execs at once leaves empty files; a FIFO must not hang the
    # tools: both skipped with a note, the rest read as before.
    def extras(d):
        open(os.path.join(d, "4242-4250.bin"), "wb").close()
        os.mkfifo(os.path.join(d, "4242-4251.freq"))
        # A process that left only its .meta (it ended before any thread file).
        shutil.copy(os.path.join(d, "4242.meta"), os.path.join(d, "4343.meta"))
    odd = patched(golden, work, "oddfiles", extras)
    rc, o, e = run([tools[1], "--no-symbols", odd], work)
    if check(rc == 0, "report oddfiles (empty .bin, FIFO): exit %r, stderr %r" % (rc, e[-300:])):
        check("4242-4250.bin: empty" in o and "4242-4251.freq: not a regular file" in o,
              "report oddfiles: its notes do not name the skipped files: %r" % o[-800:])
    rc, o, e = run([tools[1], "--json", "--no-symbols", odd], work)
    if check(rc == 0, "report --json oddfiles: exit %r, stderr %r" % (rc, e[-300:])):
        jo = json.loads(o)
        check(jo.get("totals", {}).get("alloc_bytes") == 7134,
              "report oddfiles: totals differ from the golden trace's")
        check(jo.get("totals", {}).get("processes") == len(jo.get("processes", [])) == 2,
              "report oddfiles: %r processes counted, %d listed, want 2" %
              (jo.get("totals", {}).get("processes"), len(jo.get("processes", []))))
    rc, o, e = run([tools[1], "--thread", "99999", "golden-merge"], work)
    check(rc == 1 and "no thread 99999" in e, "report --thread 99999: exit %r, %r" % (rc, e))
    rc, o, e = run([tools[1], "--diff", "nonexistent", "golden-merge"], work)
    check(rc == 1 and "nonexistent" in e, "report --diff nonexistent: exit %r, %r" % (rc, e))


# ---- 4. pprof --------------------------------------------------------------------

def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("varint past the end")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def proto_fields(b):
    """(field, wire type, value) of a protobuf message; ValueError when malformed."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise ValueError("field 0 at %d" % i)
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d at %d" % (wt, i))
        if i > len(b):
            raise ValueError("field %d runs past the end" % field)
        yield field, wt, v


def check_pprof(work, merged_out):
    path = os.path.join(merged_out, "profile.pb.gz")
    try:
        with gzip.open(path, "rb") as f:
            pb = f.read()
    except (OSError, EOFError) as ex:
        fail("profile.pb.gz: not gzip: %s" % ex)
        return
    if not check(pb and pb[0] & 7 in (0, 1, 2, 5) and pb[0] >> 3 >= 1,
                 "profile.pb.gz: empty or first byte %r is no protobuf field tag" % pb[:1]):
        return
    try:
        fields = list(proto_fields(pb))
    except ValueError as ex:
        fail("profile.pb.gz: malformed protobuf: %s" % ex)
        return
    strings = [v.decode("utf-8", "replace") for f, wt, v in fields if f == 6 and wt == 2]
    nsamples = sum(1 for f, wt, _ in fields if f == 2 and wt == 2)
    check(nsamples == 3, "profile.pb.gz: %d samples, want 3 (one per stack)" % nsamples)
    for name in ("0x405500", "0x401100", "0x404400", "alloc_space"):
        check(name in strings, "profile.pb.gz: string table lacks %r" % name)

    go = shutil.which("go")
    if not go:
        print("pprof: go is not on PATH: skipping go tool pprof")
        return
    env = dict(os.environ, HOME=work, GOCACHE=os.path.join(work, "gocache"),
               GOFLAGS="-mod=mod", PPROF_TMPDIR=work)
    rc, o, e = run([go, "tool", "pprof", "-top", "-sample_index=alloc_space", path], work,
                   timeout=120, env=env)
    if check(rc == 0, "go tool pprof -top: exit %r: %s" % (rc, e.strip()[:300])):
        check("Total samples = 7134B" in o + e, "go tool pprof: total is not 7134B:\n" + o)
        for name in ("0x405500", "0x401100", "0x404400"):
            row = r"^\s*\S+\s+\S+%\s+\S+%\s+\S+\s+\S+%\s+" + re.escape(name) + "$"
            check(re.search(row, o, re.M),
                  "go tool pprof -top does not list %s:\n%s" % (name, o))


def main():
    if len(sys.argv) < 5:
        print("usage: check_cli.py MERGE REPORT DUMP GOLDEN_MERGE_DIR [GOLDEN_V1_DIR]",
              file=sys.stderr)
        return 2
    merge, report, dump, golden = (os.path.abspath(a) for a in sys.argv[1:5])
    v1 = os.path.abspath(sys.argv[5]) if len(sys.argv) > 5 else None
    tools = (merge, report)
    work = tempfile.mkdtemp(prefix="cli.", dir=os.environ.get("TMPDIR"))
    try:
        for f in sorted(os.listdir(golden)):
            if f.endswith((".bin", ".freq", ".meta")):
                rc, _, e = run([dump, os.path.join(golden, f)], work)
                check(rc == 0, "thagtrace-dump %s: exit %r: %s" % (f, rc, e.strip()))
        d, out = check_golden_merge(tools, work, golden)
        check_golden_v1(tools, work, v1)
        check_json(tools, work, out)
        check_bad_input(tools, work, golden)
        check_pprof(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("cli: %d check%s failed" % (len(failures), "" if len(failures) == 1 else "s"))
        return 1
    print("cli: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
