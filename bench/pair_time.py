#!/usr/bin/env python3
"""Times two commands side by side: after one warm-up run each, RUNS rounds that run the
reference and the candidate one after the other (the order swapping every round), so that both
see the same machine. Prints, for each, the median wall and CPU seconds (user + system of the
process and the descendants it waited for), and the ratios candidate / reference: of the
medians, and the median of the per-round ratios (the steadier figure on a shared machine) with
a 95% bootstrap interval for it: a step whose own time varies (terraform's does by ±10 ms) needs
enough rounds for that interval to be narrower than the difference it is to show.

Usage: pair_time.py [-r RUNS] [--log FILE] --ref-label L1 --cand-label L2 \
           -- REF_CMD ... --- CAND_CMD ...
Output of the commands goes to --log (default /dev/null). The last line is machine-readable:
  ratio wall=<median of per-round wall ratios> cpu=<same for cpu> ref_wall=.. cand_wall=..
  ref_cpu=.. cand_cpu=.. wall_lo=.. wall_hi=.. cpu_lo=.. cpu_hi=.. failed=<runs that exited
  non-zero>   (lo/hi: the 95% bootstrap interval of the median ratio)
Python 3 standard library only.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time


def run(cmd, log):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status) != 0


def interval(ratios, draws=2000):
    """95% percentile-bootstrap interval of the median of `ratios` (seeded: the same rounds
    give the same interval)."""
    xs = [r for r in ratios if r == r]
    if len(xs) < 3:
        return float("nan"), float("nan")
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(draws))
    return meds[int(0.025 * draws)], meds[int(0.975 * draws) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--ref-label", default="reference")
    ap.add_argument("--cand-label", default="candidate")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if "---" not in cmd:
        ap.error("give both commands: -- REF ... --- CAND ...")
    cut = cmd.index("---")
    ref, cand = cmd[:cut], cmd[cut + 1:]
    if not ref or not cand:
        ap.error("an empty command")
    times = {"ref": [], "cand": []}
    failed = 0
    with open(a.log, "ab") as log:
        run(ref, log)
        run(cand, log)
        for i in range(a.runs):
            order = ["ref", "cand"] if i % 2 == 0 else ["cand", "ref"]
            for which in order:
                wall, cpu, bad = run(ref if which == "ref" else cand, log)
                failed += bad
                times[which].append((wall, cpu))
    med = lambda xs: statistics.median(xs)
    rw, rc = med([t[0] for t in times["ref"]]), med([t[1] for t in times["ref"]])
    cw, cc = med([t[0] for t in times["cand"]]), med([t[1] for t in times["cand"]])
    wall_ratios = [c[0] / r[0] for r, c in zip(times["ref"], times["cand"])]
    cpu_ratios = [c[1] / r[1] if r[1] else float("nan")
                  for r, c in zip(times["ref"], times["cand"])]
    wall_ratio, cpu_ratio = med(wall_ratios), med(cpu_ratios)
    (wall_lo, wall_hi), (cpu_lo, cpu_hi) = interval(wall_ratios), interval(cpu_ratios)
    for label, w, c in ((a.ref_label, rw, rc), (a.cand_label, cw, cc)):
        print("%-40s runs=%d  wall s med %.3f  cpu s med %.3f" % (label, a.runs, w, c))
    print("ratio wall=%.3f cpu=%.3f ref_wall=%.4f cand_wall=%.4f ref_cpu=%.4f cand_cpu=%.4f "
          "wall_lo=%.3f wall_hi=%.3f cpu_lo=%.3f cpu_hi=%.3f failed=%d"
          % (wall_ratio, cpu_ratio, rw, cw, rc, cc, wall_lo, wall_hi, cpu_lo, cpu_hi, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
