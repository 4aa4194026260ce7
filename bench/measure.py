"""Runs a command several times; prints the median wall time and peak RSS of its process tree.

Usage: measure.py RUNS -- COMMAND ARGS...   (the command's output is discarded)
Prints one line: runs=N median_s=... min_s=... max_rss_mb=...
Peak RSS is the largest resident set of any single process the command ran (getrusage of the
waited-for children), which for mapflow is the driver.
"""
import os
import resource
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    walls, rss = [], []
    for _ in range(runs):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.execvp(cmd[0], cmd)
        _, status, usage = os.wait4(pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"command failed with status {os.waitstatus_to_exitcode(status)}: {' '.join(cmd)}", file=sys.stderr)
            sys.exit(1)
        rss.append(usage.ru_maxrss / 1024)  # KiB on Linux
    print(f"runs={runs} median_s={statistics.median(walls):.3f} min_s={min(walls):.3f} max_rss_mb={max(rss):.1f}")


if __name__ == "__main__":
    main()
