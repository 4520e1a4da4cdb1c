#!/usr/bin/env python3
"""Runs a command and reports how it ended, measured from outside: exit
status, wall time, peak resident set size (getrusage of the waited-for
child, independent of the process's own view of itself), and whether it had
to be killed for running past a time cap. The command's pid is written to
REPORT.json.pid at once (a test signals it there); SIGINT and SIGTERM sent to
this wrapper are passed on to the command.
usage: measure.py REPORT.json CAP_SECONDS CMD ARGS..."""
import json, resource, signal, subprocess, sys, time

report, cap, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
t0 = time.monotonic()
p = subprocess.Popen(cmd)
with open(report + '.pid', 'w') as f:
    f.write(str(p.pid))
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda sig, _f: p.send_signal(sig))
timed_out = False
try:
    rc = p.wait(timeout=cap)
except subprocess.TimeoutExpired:
    timed_out = True
    p.kill()
    rc = p.wait()
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({'rc': rc, 'wall': wall, 'maxrss_kb': ru.ru_maxrss, 'timed_out': timed_out, 'pid': p.pid}, open(report, 'w'))
