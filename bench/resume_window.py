"""How long a finished task waits before its catalog row is durable, and so how many tasks
`mapflow resume` may run again after kill -9 of the driver (the at-least-once window).

    python3 bench/resume_window.py [MAPFLOW] [TASKS]

It runs TASKS exec tasks (each appends its index to a file, then prints it) on 2 workers,
polls the catalog every millisecond for rows turning Completed and notes how long after the
task's own end_time each became visible (a committed row survives kill -9: WAL mode), kills
the driver with SIGKILL halfway, resumes the job, and counts the tasks that ran twice.
"""
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone


def epoch(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def main():
    mapflow = sys.argv[1] if len(sys.argv) > 1 else "mapflow"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    d = tempfile.mkdtemp(prefix="mapflow-window-")
    runs = os.path.join(d, "runs.log")
    with open(os.path.join(d, "job.mf"), "w") as f:
        f.write(f"""job window
env local {{ workers = 2 }}
func count(i) = exec("sh", "-c", "echo \\"$1\\" >> {runs}; sleep 0.005; echo \\"$1\\"", "sh", i)
params map(0..{n - 1}, ({{i: #}}))
""")
    cat = os.path.join(d, "catalog.db")
    env = dict(os.environ, MAPFLOW_CATALOG=cat)
    p = subprocess.Popen([mapflow, "run", os.path.join(d, "job.mf")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(cat):
        time.sleep(0.001)
    time.sleep(0.2)
    con = sqlite3.connect(f"file:{cat}?mode=ro", uri=True, timeout=5)
    seen, lags = set(), []
    killed = False
    while p.poll() is None:
        now = time.time()
        try:
            rows = con.execute("SELECT task_index, end_time FROM tasks WHERE status = 'Completed'").fetchall()
        except sqlite3.OperationalError:
            continue
        for i, end in rows:
            if i not in seen:
                seen.add(i)
                lags.append(now - epoch(end))
        if len(seen) >= n // 2 and not killed:
            p.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(0.001)
    p.wait()
    before = len(seen)
    subprocess.run([mapflow, "resume", "window"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    with open(runs) as f:
        counts = {}
        for line in f:
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    twice = sum(1 for c in counts.values() if c > 1)
    lags.sort()
    q = statistics.quantiles(lags, n=100)
    print(f"row visible after the task's end: p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, "
          f"max {lags[-1] * 1000:.0f} ms ({len(lags)} rows)")
    print(f"kill -9 after {before} of {n} Completed rows; after resume {len(counts)} tasks ran, "
          f"{twice} of them twice")


if __name__ == "__main__":
    main()
