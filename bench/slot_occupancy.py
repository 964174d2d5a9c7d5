#!/usr/bin/env python3
"""Slot occupancy of a runner from a system-wide perf trace of process events.

    perf record -e sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit \
        -a -o perf.data -- RUNNER ...
    perf script -i perf.data > trace.txt
    bench/slot_occupancy.py trace.txt JOBS RUNNER_NAME      # e.g. 2 bitops, or 2 ninja

A step is a process the runner (any of its threads) forked that then exec'd (another program
than the runner: bitops' watchdog is not a step). Prints the time
from the runner's exec to its first step (start-up), the window from the first step's fork to
the last step's exit, the time from there to the runner's exit (end), and the empty slot time
inside the window: the integral of max(0, JOBS - running steps). Comparing two runners on the
same graph shows where one loses time: starting, between steps, or finishing.
"""
import re
import sys


def main():
    path, jobs, runner = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    events = []
    for line in open(path):
        m = re.search(r'^\s*(\S+)\s+(\d+)\s+\[\d+\]\s+(\d+\.\d+):\s+(sched:\S+):\s(.*)', line)
        if m:
            events.append((float(m.group(3)), m.group(4), int(m.group(2)), m.group(5)))
    execd = {tid for _, kind, tid, _ in events if kind == 'sched:sched_process_exec'}
    # Helpers that exec the runner again (bitops' watchdog) are not steps.
    helpers = {tid for _, kind, tid, rest in events if kind == 'sched:sched_process_exec'
               and rest.split('filename=')[1].split()[0].endswith('/' + runner)}
    start, tids = None, set()
    for t, kind, tid, rest in events:
        if kind == 'sched:sched_process_exec' and start is None and \
                rest.split('filename=')[1].split()[0].endswith('/' + runner):
            start = t
            tids.add(tid)
    forks = []
    for t, kind, tid, rest in events:
        if kind == 'sched:sched_process_fork':
            m = re.search(r'pid=(\d+) child_comm=\S+ child_pid=(\d+)', rest)
            forks.append((t, int(m.group(1)), int(m.group(2))))
    # The runner's threads: children of its threads that never exec.
    grew = True
    while grew:
        grew = False
        for _, parent, child in forks:
            if parent in tids and child not in execd and child not in tids:
                tids.add(child)
                grew = True
    steps = {child: [t, None] for t, parent, child in forks
             if parent in tids and child in execd and child not in helpers}
    end = None
    for t, kind, tid, _ in events:
        if kind == 'sched:sched_process_exit':
            if tid in steps and steps[tid][1] is None:
                steps[tid][1] = t
            elif tid in tids:
                end = t
    spans = sorted(v for v in steps.values() if v[1] is not None)
    first, last = spans[0][0], max(e for _, e in spans)
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running, prev, empty = 0, first, 0.0
    for t, d in points:
        empty += (t - prev) * max(0, jobs - running)
        prev, running = t, running + d
    print(f"{runner}: steps {len(spans)}  start-up {(first - start) * 1000:.1f} ms  "
          f"window {(last - first) * 1000:.0f} ms  end {(end - last) * 1000:.1f} ms  "
          f"empty slot time {empty * 1000:.0f} ms  total {(end - start) * 1000:.0f} ms")


if __name__ == '__main__':
    main()
