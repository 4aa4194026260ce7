"""mapflow's benchmarks: each work item run by mapflow and by its peers in the same run, on the
same machine, interleaved round by round so that a busy moment hits them alike; medians of
RUNS runs; one table with every figure and the ratios. bench/run installs the peers, builds
the binaries and calls this; see the README's Performance section.

Environment: BENCH_SHORT=1 (small sizes, one run: proves the benchmarks work, in seconds),
BENCH_RUNS (runs per figure), BENCH_ONLY (comma-separated items: expr, exec, hadoop, slurm, ec2,
catalog, scale, python, cache, remote, sim), BENCH_SCALE=100M (item 10 at 100,000,000 tasks), BENCH_SCALE_RUNS (runs of item 6's ten-million-task jobs,
default 1), BENCH_REMOTE_RUNS (runs of item 9's million-task remote jobs, default 1), BENCH_DASK_PYTHON (a python with dask and distributed; bench/run sets it),
BENCH_DASK_RUNS (Dask's runs, default 1: a run of 100,000 tasks takes minutes).
A ratio is mapflow's time per task over the peer's: below 1.00 mapflow is faster.
"""
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(BENCH, "out")
SHORT = bool(os.environ.get("BENCH_SHORT"))
RUNS = int(os.environ.get("BENCH_RUNS") or (1 if SHORT else 3))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
N = 20_000 if SHORT else 1_000_000  # expression tasks
SCALE_N = 200_000 if SHORT else 10_000_000  # item 6's large size
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS") or 1)  # its runs: each takes about 40 s
REMOTE_N = 20_000 if SHORT else 1_000_000  # item 9's tasks on Hadoop and EC2
REMOTE_RUNS = int(os.environ.get("BENCH_REMOTE_RUNS") or 1)
SIM_N = 200_000 if SHORT else (100_000_000 if os.environ.get("BENCH_SCALE") == "100M" else 10_000_000)
SIM_S3_N = 20_000 if SHORT else 200_000  # the S3 sample of item 10, on moto
DASK_N = 2_000 if SHORT else 100_000
EXEC_N = 50 if SHORT else 1_000
HADOOP_N = 1_000 if SHORT else 10_000
PY_N = 5_000 if SHORT else 100_000  # Python add tasks
PY_EXEC_N = 20 if SHORT else 1_000  # the same through exec
PY_SLOW_N = 50 if SHORT else 1_000  # tasks of a module that takes 0.5 s to import
PY_SLOW_EXEC_N = 4 if SHORT else 20  # the same through exec: 0.5 s each, so few
MAPFLOW = os.path.join(OUT, "mapflow")
GOLOOP = os.path.join(OUT, "goloop")
DASK_PYTHON = os.environ.get("BENCH_DASK_PYTHON", "")
# Dask runs DASK_N tasks in about four minutes here: one round unless told otherwise.
DASK_RUNS = int(os.environ.get("BENCH_DASK_RUNS") or 1)

rows = []  # the table: (label, tasks, seconds, rate, rss, ratio, aim)
notes = []


def want(item):
    return not ONLY or item in ONLY


def measure(cmd, cwd=OUT, stdout=None):
    """Runs cmd; returns (wall seconds, peak RSS in MB of its largest process, stdout text).
    stdout is kept (for checking results) in a file, stderr discarded; a failure stops all."""
    out_path = os.path.join(OUT, "last.stdout")
    with open(out_path, "wb") as out, open(os.path.join(OUT, "last.stderr"), "wb") as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if p.returncode != 0:
        with open(os.path.join(OUT, "last.stderr"), encoding="utf-8", errors="replace") as f:
            tail = f.read()[-2000:]
        sys.exit(f"bench: {' '.join(map(str, cmd))} failed with status {p.returncode}:\n{tail}")
    return wall, usage.ru_maxrss / 1024, text


def expect(text, pattern, what):
    if not re.search(pattern, text, re.M):
        sys.exit(f"bench: {what}: output does not match {pattern!r}:\n{text[-1000:]}")


def job_file(name, size, default, extra=None):
    """Copies bench/NAME into bench/out with its size replaced; returns the copy's path."""
    with open(os.path.join(BENCH, name)) as f:
        src = f.read().replace(str(default), str(size))
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        f.write(src)
    return path


def fresh(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def med(xs):
    return statistics.median(xs)


def rate(tasks, secs):
    return f"{tasks / secs:,.0f}" if secs else ""


def ratio(m_tasks, m_secs, p_tasks, p_secs):
    return (m_secs / m_tasks) / (p_secs / p_tasks)


def aim(value, op, limit, unit=""):
    """The aim's text and whether it is met; nothing in short mode, where process starts and
    fixed costs dominate the small sizes and the aims do not apply."""
    if SHORT:
        return ""
    ok = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
    return f"{op} {limit:,g}{unit}: {'met' if ok else 'NOT met'}"


def row(label, tasks="", secs=None, rss=None, r=None, goal=""):
    rows.append((label, f"{tasks:,}" if tasks != "" else "", f"{secs:.3f}" if secs is not None else "",
                 rate(tasks, secs) if tasks != "" and secs else "",
                 f"{rss:.0f} MB" if rss is not None else "", f"{r:.3g}" if r is not None else "", goal))


def completed_rows(catalog):
    con = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        return con.execute("""SELECT count(*) FROM tasks WHERE status = 'Completed' AND job_id =
            (SELECT job_id FROM jobs ORDER BY submitted_at DESC, rowid DESC LIMIT 1)""").fetchone()[0]
    finally:
        con.close()


# 1. Expression tasks, catalog included, against a Go loop writing the same rows, Python's
#    multiprocessing with and without writing them, and Dask.
def bench_expr():
    mf = job_file("add_1m.mf", N, 1000000)
    cat = os.path.join(OUT, "expr-catalog.db")
    m, g, ps, p = [], [], [], []
    rss = []
    for _ in range(RUNS):
        wall, mb, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", mf])
        expect(out, rf"^result: {N * (N + 1)}$", "mapflow expression job")
        m.append(wall)
        rss.append(mb)
        wall, mb_go, _ = measure([GOLOOP, "-n", str(N), "-db", os.path.join(OUT, "goloop.db")])
        g.append(wall)
        wall, mb_ps, _ = measure([sys.executable, os.path.join(BENCH, "peers", "mp.py"), str(N),
                                  "--sqlite", os.path.join(OUT, "mp.db")])
        ps.append(wall)
        wall, mb_p, _ = measure([sys.executable, os.path.join(BENCH, "peers", "mp.py"), str(N)])
        p.append(wall)
    got = completed_rows(cat)
    if got != N:
        sys.exit(f"bench: expected {N} Completed rows in the catalog, found {got}")
    ms = med(m)
    row("1. mapflow run, local, 'x + y', catalog included", N, ms, max(rss),
        goal=aim(N / ms, ">=", 200_000, " tasks/s"))
    row("   peer: Go loop, same rows via modernc.org/sqlite", N, med(g), mb_go,
        ratio(N, ms, N, med(g)), aim(ratio(N, ms, N, med(g)), "<=", 1.25))
    row("   peer: multiprocessing.Pool.map + sqlite3 rows", N, med(ps), mb_ps,
        ratio(N, ms, N, med(ps)), aim(ratio(N, ms, N, med(ps)), "<", 1))
    row("   peer: multiprocessing.Pool.map alone", N, med(p), mb_p,
        ratio(N, ms, N, med(p)), aim(ratio(N, ms, N, med(p)), "<=", 3))
    if DASK_PYTHON:
        _, mb, out = measure([DASK_PYTHON, os.path.join(BENCH, "peers", "dask_map.py"), str(DASK_N), str(DASK_RUNS)])
        start = float(re.search(r"start_s=([0-9.]+)", out).group(1))
        d = med(float(x) for x in re.search(r"round_s=([0-9.,]+)", out).group(1).split(","))
        row(f"   peer: Dask client.map, LocalCluster ({DASK_N:,} tasks)", DASK_N, d, None,
            ratio(N, ms, DASK_N, d))
        notes.append(f"Dask: {DASK_N:,} tasks (not {N:,}), {DASK_RUNS} run(s) (BENCH_DASK_RUNS); its "
                     f"cluster start ({start:.1f} s) is not counted; its ratio compares time per task.")
    else:
        notes.append("Dask: skipped (BENCH_DASK_PYTHON unset; bench/run sets it).")


# 2. exec tasks, against xargs and GNU parallel starting the same programs, two at a time.
def bench_exec():
    for name, label, xargs, parallel in [
        ("exec_true.mf", "exec('/bin/true', i)", "xargs -P 2 -n 1 /bin/true", "parallel -j 2 /bin/true"),
        ("exec_sleep.mf", "exec('sleep', '0.01')", "xargs -P 2 -I{} sleep 0.01", "parallel -j 2 -N0 sleep 0.01"),
    ]:
        mf = job_file(name, EXEC_N, 1000)
        cat = os.path.join(OUT, "exec-catalog.db")
        m, x, gp, rss = [], [], [], []
        for _ in range(RUNS):
            wall, mb, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", mf])
            expect(out, rf"^result: {EXEC_N}$", f"mapflow {name}")
            m.append(wall)
            rss.append(mb)
            wall, _, _ = measure(["sh", "-c", f"seq {EXEC_N} | {xargs}"])
            x.append(wall)
            wall, _, _ = measure(["sh", "-c", f"seq {EXEC_N} | {parallel}"])
            gp.append(wall)
        if completed_rows(cat) != EXEC_N:
            sys.exit(f"bench: {name}: not every task Completed")
        ms = med(m)
        row(f"2. mapflow run, local, {label}, workers 2", EXEC_N, ms, max(rss))
        row(f"   peer: seq | {xargs}", EXEC_N, med(x), None, ratio(EXEC_N, ms, EXEC_N, med(x)),
            aim(ratio(EXEC_N, ms, EXEC_N, med(x)), "<=", 1.25))
        row(f"   peer: seq | {parallel}", EXEC_N, med(gp), None, ratio(EXEC_N, ms, EXEC_N, med(gp)),
            aim(ratio(EXEC_N, ms, EXEC_N, med(gp)), "<=", 0.25))


# 3. A cluster of the project's scripts: the seed's 3-task job and HADOOP_N tasks, submit to
#    results; on Hadoop in 3 containers, on Slurm as a job array of 3 workers.
def bench_cluster(script, seed_file, many_file, label, where, aim_seed=None):
    if subprocess.run([os.path.join(ROOT, "scripts", script), "status"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        notes.append(f"{label}: skipped, no {script} running (bench/run starts one).")
        return
    seed = os.path.join(ROOT, "examples", seed_file)
    many = job_file(many_file, HADOOP_N, 10000)
    cat = fresh(os.path.join(OUT, label.lower() + "-catalog.db"))
    s, b = [], []
    for _ in range(RUNS):
        wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", seed])
        expect(out, r"^result: 70$", "mapflow " + seed_file)
        s.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", many])
        expect(out, rf"^result: {HADOOP_N * (HADOOP_N + 1)}$", "mapflow " + many_file)
        b.append(wall)
    r = med(b) / med(s)
    number = "3." if label == "Hadoop" else "3b."
    row(f"{number} mapflow run, {label.lower()}, seed job, {where}", 3, med(s))
    row(f"   mapflow run, {label.lower()}, {HADOOP_N:,} tasks, {where}", HADOOP_N, med(b), None, None,
        f"time / seed's: {r:.2f} {aim(r, '<', 2) if aim_seed else ''}".strip())


def bench_hadoop():
    bench_cluster("hadoop-minicluster", "add_hadoop.mf", "hadoop_10k.mf", "Hadoop", "3 containers", aim_seed=True)


def bench_slurm():
    bench_cluster("slurm-cluster", "add_slurm.mf", "slurm_10k.mf", "Slurm", "array of 3")


# 4. EC2 against moto: the seed's 3-task job and HADOOP_N tasks, both on 3 hosts, submit to
#    results, with where the time went (bench/ec2run plays the instances' boot).
EC2RUN = os.path.join(OUT, "ec2run")


def bench_ec2():
    if not os.environ.get("MAPFLOW_MOTO"):
        notes.append("EC2: skipped, no moto server (bench/run starts one: scripts/moto).")
        return
    seed = os.path.join(ROOT, "examples", "add_ec2.mf")
    many = job_file("ec2_10k.mf", HADOOP_N, 10000)
    cat = os.path.join(OUT, "ec2-catalog.db")
    fresh(cat)
    parts = ("total_s", "staging_s", "launch_s", "run_s", "end_s")
    for label, file, name, bucket, n, result in [
        ("seed job", seed, "add_ec2", "mapflow-examples", 3, 70),
        (f"{HADOOP_N:,} tasks", many, "ec2_10k", "mapflow-bench", HADOOP_N, HADOOP_N * (HADOOP_N + 1)),
    ]:
        got = {p: [] for p in parts}
        for _ in range(RUNS):
            _, _, out = measure([EC2RUN, "-mapflow", MAPFLOW, "-catalog", cat, "-bucket", bucket, file, name])
            expect(out, rf"^result: {result}$", f"mapflow {os.path.basename(file)} on EC2")
            for p in parts:
                got[p].append(float(re.search(rf"{p}=([0-9.]+)", out).group(1)))
        m = {p: med(v) for p, v in got.items()}
        split = f"staging {m['staging_s']:.2f} + launch {m['launch_s']:.2f} + run {m['run_s']:.2f} + end {m['end_s']:.2f}"
        if n == 3:
            seed_s = m["total_s"]
            row("4. mapflow run, ec2 (moto), seed job, 3 hosts", n, m["total_s"], None, None, split)
        else:
            row(f"   mapflow run, ec2 (moto), {label}, 3 hosts", n, m["total_s"], None, None,
                f"{split}; time / seed's: {m['total_s'] / seed_s:.2f}")
    notes.append("4: staging = the job and the binary put in S3; launch = RunInstances; run = the hosts' "
                 "boot (user-data fetching the binary with the AWS CLI), their tasks, and the driver "
                 "polling S3 until every result is in; end = the rest. moto boots nothing: "
                 "bench/ec2run runs each instance's user-data as a local process.")


# 9. Remote at a million: the x + y job of REMOTE_N tasks on Hadoop (3 containers) and on EC2
#    (moto, 3 hosts): submit to results, the driver's peak RSS, and what the run left in HDFS
#    or S3: objects per million tasks and bytes per task (the staged binary left out).
def bench_remote():
    hadoop_up = subprocess.run([os.path.join(ROOT, "scripts", "hadoop-minicluster"), "status"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if hadoop_up:
        env = subprocess.run([os.path.join(ROOT, "scripts", "hadoop-minicluster"), "env"],
                             capture_output=True, text=True).stdout
        webhdfs = re.search(r"MAPFLOW_HDFS_HTTP=(\S+)", env).group(1) + "/webhdfs/v1"
        mf = job_file("hadoop_10k.mf", REMOTE_N, 10000)
        cat = os.path.join(OUT, "remote-hadoop.db")
        walls, peaks = [], []
        for _ in range(REMOTE_RUNS):
            wall, mb, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", mf])
            expect(out, rf"^result: {REMOTE_N * (REMOTE_N + 1)}$", "mapflow hadoop_10k.mf")
            walls.append(wall)
            peaks.append(mb)
        objects, size = hdfs_usage(webhdfs, "/user/mapflow/bench/" + last_job_id(cat))
        remote_row("9. mapflow run, hadoop, 'x + y', 3 containers", med(walls), max(peaks), objects, size)
    else:
        notes.append("9 (Hadoop): skipped, no minicluster running (bench/run starts one).")
    if os.environ.get("MAPFLOW_MOTO"):
        mf = job_file("ec2_10k.mf", REMOTE_N, 10000)
        cat = os.path.join(OUT, "remote-ec2.db")
        walls, peaks = [], []
        for _ in range(REMOTE_RUNS):
            wall, mb, out = measure([EC2RUN, "-mapflow", MAPFLOW, "-catalog", fresh(cat), "-bucket", "mapflow-bench",
                                     mf, "ec2_10k"])
            expect(out, rf"^result: {REMOTE_N * (REMOTE_N + 1)}$", "mapflow ec2_10k.mf on EC2")
            walls.append(wall)
            peaks.append(mb)
        objects, size = s3_usage("mapflow-bench", "jobs/" + last_job_id(cat) + "/")
        remote_row("   mapflow run, ec2 (moto), 'x + y', 3 hosts", med(walls), max(peaks), objects, size)
    else:
        notes.append("9 (EC2): skipped, no moto server (bench/run starts one).")
    notes.append(f"9: {REMOTE_RUNS} run(s) each (BENCH_REMOTE_RUNS); objects and bytes are what the last run "
                 "left under its job's directory (task chunks, claims, results, the manifest), the binary "
                 "left out; peak RSS is the driver's (EC2: the largest of the driver and the played hosts).")


def remote_row(label, secs, rss, objects, size):
    per_m = objects / (REMOTE_N / 1e6)
    row(label, REMOTE_N, secs, rss, None,
        aims(f"{per_m:,.0f} objects/M tasks, {size / REMOTE_N:.0f} B/task",
             aim(REMOTE_N / secs, ">=", 100_000, " tasks/s"), aim(per_m, "<=", 2000, " objects/M")))


def aims(*parts):
    return "; ".join(p for p in parts if p)


def last_job_id(catalog):
    con = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        return con.execute("SELECT job_id FROM jobs ORDER BY submitted_at DESC, rowid DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()


def hdfs_usage(webhdfs, path):
    """Files and bytes under path in HDFS, by WebHDFS, the binary (a file named mapflow) left out."""
    import json
    import urllib.request
    objects = size = 0
    with urllib.request.urlopen(f"{webhdfs}{path}?op=LISTSTATUS&user.name={os.environ.get('USER', 'root')}") as r:
        entries = json.load(r)["FileStatuses"]["FileStatus"]
    for e in entries:
        if e["type"] == "DIRECTORY":
            o, b = hdfs_usage(webhdfs, path + "/" + e["pathSuffix"])
            objects, size = objects + o, size + b
        elif e["pathSuffix"] != "mapflow":
            objects, size = objects + 1, size + e["length"]
    return objects, size


def s3_usage(bucket, prefix):
    """Objects and bytes under s3://bucket/prefix on moto, by boto3 in moto's Python."""
    code = ("import boto3, sys\n"
            "s3 = boto3.client('s3')\n"
            "n = b = 0\n"
            "for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):\n"
            "    for o in page.get('Contents', []):\n"
            "        n, b = n + 1, b + o['Size']\n"
            "print(n, b)\n")
    out = subprocess.run([os.environ["MAPFLOW_MOTO_PYTHON"], "-c", code, bucket, prefix],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


# 10. A hundred million, simulated: the real driver, staging protocol and catalog, with workers
#     that claim chunks and answer them without running them (bench/simrun), as for 1,000 hosts;
#     SIM_N tasks on a directory store, and a sample on S3 (moto) for its requests.
SIMRUN = os.path.join(OUT, "simrun")


def bench_sim():
    n = SIM_N
    need = n * 380  # bytes: the catalog (about 190 a row), its WAL, and the store's chunks (about 180 a task)
    free = shutil.disk_usage(OUT).free
    if need > free:
        notes.append(f"10: skipped {n:,} simulated tasks: they need about {need / 1e9:.0f} GB of disk, "
                     f"{free / 1e9:.0f} GB are free here.")
        return
    cat = os.path.join(OUT, "sim.db")
    store = os.path.join(OUT, "sim-store")
    _, mb, out = measure([SIMRUN, "-n", str(n), "-hosts", "1000", "-catalog", cat, "-store", store])
    f = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out)}
    row(f"10. simulated: {n:,} tasks, 1,000 hosts, directory store", n, f["wall_s"], mb, None,
        f"catalog {f['catalog_bytes_per_m'] / 1e6:.0f} MB/M rows; per M tasks: {f['put_per_m']:,.0f} PUT, "
        f"{f['get_per_m']:,.0f} GET, {f['list_per_m']:,.0f} LIST, {f['objects_per_m']:,.0f} objects; "
        f"{f['store_bytes_per_task']:.0f} B/task; {f['chunks']:,.0f} chunks")
    shutil.rmtree(store, ignore_errors=True)
    fresh(cat)
    if os.environ.get("MAPFLOW_MOTO"):
        n = SIM_S3_N
        _, mb, out = measure([SIMRUN, "-n", str(n), "-hosts", "1000", "-catalog", cat, "-s3", "mapflow-bench"])
        f = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out)}
        row(f"    the same, {n:,} tasks, S3 (moto)", n, f["wall_s"], mb, None,
            f"per M tasks: {f['put_per_m']:,.0f} PUT, {f['get_per_m']:,.0f} GET, {f['list_per_m']:,.0f} LIST, "
            f"{f['objects_per_m']:,.0f} objects; {f['chunks']:,.0f} chunks")
        fresh(cat)
    notes.append("10: simulated workers answer each task without running it (bench/simrun); tasks/s is the "
                 "driver's ingest: staging, reading results, the catalog. BENCH_SCALE=100M runs 100,000,000 "
                 "tasks when the disk holds them (about 38 GB).")


# 7. Python functions in warm workers: a Python add against multiprocessing writing the same
#    rows and against exec per task; a module slow to import; Hadoop and EC2 beside their
#    expression twins.
def copy_py(*names):
    for n in names:
        shutil.copy(os.path.join(BENCH, n), os.path.join(OUT, n))


def bench_python():
    copy_py("add.py", "add_main.py", "slow_import.py", "slow_main.py")
    cat = os.path.join(OUT, "py-catalog.db")
    mf = job_file("py_add.mf", PY_N, 100000)
    ex = job_file("py_exec.mf", PY_EXEC_N, 1000)
    m, ps, e, rss = [], [], [], []
    for _ in range(RUNS):
        wall, mb, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", mf])
        expect(out, rf"^result: {PY_N * (PY_N + 1)}$", "mapflow py_add.mf")
        if completed_rows(cat) != PY_N:
            sys.exit("bench: py_add.mf: not every task Completed")
        m.append(wall)
        rss.append(mb)
        wall, _, _ = measure([sys.executable, os.path.join(BENCH, "peers", "mp.py"), str(PY_N),
                              "--sqlite", os.path.join(OUT, "mp.db")])
        ps.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(os.path.join(OUT, "py-exec.db")), "run", ex])
        expect(out, rf"^result: {PY_EXEC_N * (PY_EXEC_N + 1)}$", "mapflow py_exec.mf")
        e.append(wall)
    ms = med(m)
    row("7. mapflow run, local, python add(x, y), workers 2", PY_N, ms, max(rss), None,
        aim(PY_N / ms, ">=", 50_000, " tasks/s"))
    r = ratio(PY_N, ms, PY_N, med(ps))
    row("   peer: multiprocessing.Pool(2).map + sqlite3 rows", PY_N, med(ps), None, r, aim(r, "<=", 2))
    r = ratio(PY_N, ms, PY_EXEC_N, med(e))
    row(f"   peer: the same function by exec('python3', ...) per task", PY_EXEC_N, med(e), None, r,
        aim(1 / r, ">=", 100, "x less time per task"))

    slow = job_file("py_slow.mf", PY_SLOW_N, 1000)
    slow_ex = job_file("py_slow_exec.mf", PY_SLOW_EXEC_N, 1000)
    m, e = [], []
    for _ in range(RUNS):
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(os.path.join(OUT, "py-slow.db")), "run", slow])
        expect(out, rf"^result: {PY_SLOW_N * (PY_SLOW_N + 1)}$", "mapflow py_slow.mf")
        m.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(os.path.join(OUT, "py-slow-exec.db")), "run", slow_ex])
        expect(out, rf"^result: {PY_SLOW_EXEC_N * (PY_SLOW_EXEC_N + 1)}$", "mapflow py_slow_exec.mf")
        e.append(wall)
    ms = med(m)
    row("   mapflow run, python, a module 0.5 s to import, workers 2", PY_SLOW_N, ms, None, None,
        aim(ms, "<", 2, " s"))
    r = ratio(PY_SLOW_N, ms, PY_SLOW_EXEC_N, med(e))
    row(f"   peer: the same by exec per task ({PY_SLOW_EXEC_N} tasks)", PY_SLOW_EXEC_N, med(e), None, r,
        f"{PY_SLOW_N:,} tasks by exec: about {med(e) / PY_SLOW_EXEC_N * PY_SLOW_N:,.0f} s")
    notes.append(f"7: the exec peers run fewer tasks ({PY_EXEC_N:,} and {PY_SLOW_EXEC_N}); their ratios "
                 "compare time per task. multiprocessing.Pool here has os.cpu_count() processes.")

    have_hadoop = subprocess.run([os.path.join(ROOT, "scripts", "hadoop-minicluster"), "status"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if have_hadoop:
        cat = fresh(os.path.join(OUT, "py-hadoop.db"))
        py = job_file("py_hadoop_10k.mf", HADOOP_N, 10000)
        twin = job_file("hadoop_10k.mf", HADOOP_N, 10000)
        p, x = [], []
        for _ in range(RUNS):
            wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", py])
            expect(out, rf"^result: {HADOOP_N * (HADOOP_N + 1)}$", "mapflow py_hadoop_10k.mf")
            p.append(wall)
            wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", twin])
            x.append(wall)
        row(f"   mapflow run, hadoop, python add, 3 containers", HADOOP_N, med(p), None, med(p) / med(x),
            "ratio: over the expression job of the same size")
        row(f"   mapflow run, hadoop, x + y, 3 containers", HADOOP_N, med(x))
    else:
        notes.append("7: Hadoop skipped, no minicluster running (bench/run starts one).")
    if os.environ.get("MAPFLOW_MOTO"):
        cat = fresh(os.path.join(OUT, "py-ec2.db"))
        py = job_file("py_ec2_10k.mf", HADOOP_N, 10000)
        twin = job_file("ec2_10k.mf", HADOOP_N, 10000)
        p, x = [], []
        for _ in range(RUNS):
            _, _, out = measure([EC2RUN, "-mapflow", MAPFLOW, "-catalog", cat, "-bucket", "mapflow-bench", py, "py_ec2_10k"])
            expect(out, rf"^result: {HADOOP_N * (HADOOP_N + 1)}$", "mapflow py_ec2_10k.mf on EC2")
            p.append(float(re.search(r"total_s=([0-9.]+)", out).group(1)))
            _, _, out = measure([EC2RUN, "-mapflow", MAPFLOW, "-catalog", cat, "-bucket", "mapflow-bench", twin, "ec2_10k"])
            x.append(float(re.search(r"total_s=([0-9.]+)", out).group(1)))
        row(f"   mapflow run, ec2 (moto), python add, 3 hosts", HADOOP_N, med(p), None, med(p) / med(x),
            "ratio: over the expression job of the same size")
        row(f"   mapflow run, ec2 (moto), x + y, 3 hosts", HADOOP_N, med(x))
    else:
        notes.append("7: EC2 skipped, no moto server (bench/run starts one: scripts/moto).")


# 5. Queries over the catalog of the 1,000,000-task job, by `mapflow sql` (the whole command)
#    and by Python's sqlite3 (C SQLite, the query alone) on the same file.
QUERIES = [
    ("status counts", "SELECT status, count(*) FROM tasks GROUP BY status"),
    ("run_time p50 and p99 of the job", """SELECT percentile(run_time, 50), percentile(run_time, 99)
        FROM tasks WHERE job_id = (SELECT job_id FROM jobs ORDER BY submitted_at DESC LIMIT 1)"""),
    ("run_time p50 of the job by ORDER BY ... OFFSET", """SELECT run_time FROM tasks WHERE job_id =
        (SELECT job_id FROM jobs ORDER BY submitted_at DESC LIMIT 1) ORDER BY run_time LIMIT 1 OFFSET
        (SELECT num_tasks / 2 FROM jobs ORDER BY submitted_at DESC LIMIT 1)"""),
]


class Percentile:
    """percentile(Y, P) as SQLite's percentile extension (and mapflow's catalog) computes it,
    for the Python peer: Python's sqlite3 is built without that extension."""

    def __init__(self):
        self.ys, self.p = [], 0.0

    def step(self, y, p):
        if y is not None:
            self.ys.append(float(y))
        self.p = p / 100.0

    def finalize(self):
        if not self.ys:
            return None
        ys = sorted(self.ys)
        ix = self.p * (len(ys) - 1)
        i = int(ix)
        if i + 1 >= len(ys):
            return ys[i]
        return ys[i] + (ys[i + 1] - ys[i]) * (ix - i)


def bench_catalog():
    cat = os.path.join(OUT, "expr-catalog.db")
    if not os.path.exists(cat):
        mf = job_file("add_1m.mf", N, 1000000)
        measure([MAPFLOW, "--catalog", fresh(cat), "run", mf])
    for what, q in QUERIES:
        m, c = [], []
        for _ in range(RUNS):
            wall, _, _ = measure([MAPFLOW, "--catalog", cat, "sql", q])
            m.append(wall)
            con = sqlite3.connect(f"file:{cat}?mode=ro", uri=True)
            con.create_aggregate("percentile", 2, Percentile)
            start = time.perf_counter()
            con.execute(q).fetchall()
            c.append(time.perf_counter() - start)
            con.close()
        row(f"5. mapflow sql: {what} ({N:,} rows)", "", med(m), None, None, aim(med(m), "<", 1, " s"))
        row("   peer: the query alone in Python's sqlite3", "", med(c), None, med(m) / med(c))
    notes.append("5: " + "; ".join(f"{w}: {' '.join(q.split())}" for w, q in QUERIES))


# 6. Scale: the driver's peak RSS and time per task for the x + y job at N and SCALE_N tasks,
#    without a combiner (params as a range and as a .jsonl file), and with `combine
#    sum(results)`, which keeps every result until the end.
def bench_scale():
    d = os.path.join(OUT, "scale")
    os.makedirs(d, exist_ok=True)
    cat = os.path.join(d, "catalog.db")

    def job(name, params, combine=False):
        path = os.path.join(d, f"{name}.mf")
        with open(path, "w") as f:
            f.write(f"job {name}\nenv local {{}}\nfunc add(x, y) = x + y\nparams {params}\n")
            if combine:
                f.write("combine sum(results)\n")
        return path

    def sets(n):
        path = os.path.join(d, f"sets-{n}.jsonl")
        with open(path, "w") as f:
            for lo in range(1, n + 1, 100_000):
                f.writelines(f'{{"x": {i}, "y": {i}}}\n' for i in range(lo, min(n, lo + 99_999) + 1))
        return f'file "{os.path.basename(path)}"'

    def run(mf, n, runs, combine=False):
        walls, peaks = [], []
        for _ in range(runs):
            wall, mb, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", mf], cwd=d)
            expect(out, rf"^result: {n * (n + 1) if combine else 'null'}$", os.path.basename(mf))
            walls.append(wall)
            peaks.append(mb)
        return med(walls), max(peaks)

    big = f"{SCALE_N:,}"
    for label, small_params, big_params in [
            ("range", f"map(1..{N}, ({{x: #, y: #}}))", f"map(1..{SCALE_N}, ({{x: #, y: #}}))"),
            (".jsonl file", sets(N), sets(SCALE_N))]:
        s_secs, s_rss = run(job("scale_small", small_params), N, RUNS)
        b_secs, b_rss = run(job("scale_big", big_params), SCALE_N, SCALE_RUNS)
        r = (b_secs / SCALE_N) / (s_secs / N)
        row(f"6. mapflow run, 'x + y', params {label}, no combiner", N, s_secs, s_rss, None,
            aim(s_rss, "<=", 128, " MB"))
        row(f"   the same, {big} tasks", SCALE_N, b_secs, b_rss, r,
            aims(aim(b_rss, "<=", 256, " MB"), aim(r, "<=", 1.15)))
    secs, rss = run(job("scale_sum", f"map(1..{SCALE_N}, ({{x: #, y: #}}))", combine=True), SCALE_N, SCALE_RUNS, combine=True)
    row(f"   the same, {big} tasks, range, combine sum(results)", SCALE_N, secs, rss, None, aim(rss, "<=", 512, " MB"))
    notes.append(f"6: ratio: time per task at {big} tasks over the time per task at {N:,}; "
                 f"the {big}-task runs: {SCALE_RUNS} each (BENCH_SCALE_RUNS).")
    shutil.rmtree(d)


# 8. The cache: the 1M-task job run with `cache` and then again fully cached, against the same
#    job without it; the cost of finding every task at a new index (three sets put first); and
#    the exec job, whose tasks cost a process each, run and then fully cached.
def bench_cache():
    plain = job_file("add_1m.mf", N, 1000000)
    cached = job_file("add_1m_cache.mf", N, 1000000)
    front = job_file("add_1m_cache_front.mf", N, 1000000)
    off_cat, cat = os.path.join(OUT, "cache-off.db"), os.path.join(OUT, "cache.db")
    again_cat = os.path.join(OUT, "cache-again.db")
    total = N * (N + 1)
    off, first, again, rerun, moved = [], [], [], [], []
    for _ in range(RUNS):
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(off_cat), "run", plain])
        expect(out, rf"^result: {total}$", "mapflow add_1m.mf")
        off.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(cat), "run", cached])
        expect(out, rf"^result: {total}$", "mapflow add_1m_cache.mf")
        first.append(wall)
        # The same job again without caching, on a copy of the catalog that holds the first
        # run, and the cached rerun on the catalog itself: both start from the same catalog
        # (every run first checks the whole file with SQLite's quick_check, which takes
        # longer as the catalog grows).
        copy_catalog(cat, again_cat)
        wall, _, out = measure([MAPFLOW, "--catalog", again_cat, "run", plain])
        again.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", cached])
        expect(out, rf"^result: {total}$", "mapflow add_1m_cache.mf, cached")
        expect(last_stderr(), rf"^{N:,} cached, 0 run$", "the cached rerun")
        rerun.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", cat, "run", front])
        expect(last_stderr(), rf"^{N:,} cached, 3 run ", "the rerun with three sets first")
        moved.append(wall)
    o = med(off)
    row(f"8. mapflow run, 'x + y', no cache (fresh catalog)", N, o)
    row(f"   the same with cache: first run, keys recorded", N, med(first), None, med(first) / o,
        aim(med(first) / o, "<=", 1.25))
    a = med(again)
    row(f"   the same again, no cache (catalog holds the first run)", N, a, None, a / o)
    row(f"   the same again, with cache: all {N:,} cached", N, med(rerun), None, med(rerun) / a,
        aim(med(rerun) / a, "<", 1))
    row(f"   with cache, 3 sets put first: {N:,} cached, 3 run", N + 3, med(moved), None, med(moved) / o)
    notes.append("8: ratios are against the first row, the same job without cache on a fresh catalog, "
                 "but the cached rerun's, which is against the rerun without cache from the same catalog. "
                 "'3 sets put first' moves every task's index: each is looked up in cache_index, "
                 "which that run fills (in key order) with the first run's keys.")

    mf = job_file("exec_true_cache.mf", EXEC_N, 1000)
    ecat = os.path.join(OUT, "cache-exec.db")
    run1, run2 = [], []
    for _ in range(RUNS):
        wall, _, out = measure([MAPFLOW, "--catalog", fresh(ecat), "run", mf])
        expect(out, rf"^result: {EXEC_N}$", "mapflow exec_true_cache.mf")
        run1.append(wall)
        wall, _, out = measure([MAPFLOW, "--catalog", ecat, "run", mf])
        expect(last_stderr(), rf"^{EXEC_N:,} cached, 0 run$", "the cached exec rerun")
        run2.append(wall)
    row(f"   mapflow run, exec('/bin/true', i), cache: first run", EXEC_N, med(run1))
    row(f"   the same again: all {EXEC_N:,} cached", EXEC_N, med(run2), None, med(run2) / med(run1))


def copy_catalog(src, dst):
    fresh(dst)
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copyfile(src + suffix, dst + suffix)


def last_stderr():
    with open(os.path.join(OUT, "last.stderr"), encoding="utf-8", errors="replace") as f:
        return f.read()


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"mapflow bench: {'short' if SHORT else 'full'} sizes, {RUNS} run(s) per figure, medians; "
          f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    for item, fn in [("expr", bench_expr), ("exec", bench_exec), ("hadoop", bench_hadoop), ("slurm", bench_slurm),
                     ("ec2", bench_ec2), ("catalog", bench_catalog), ("scale", bench_scale),
                     ("python", bench_python), ("cache", bench_cache), ("remote", bench_remote), ("sim", bench_sim)]:
        if want(item):
            t = time.perf_counter()
            fn()
            print(f"  {item}: done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    head = ("work", "tasks", "median s", "tasks/s", "peak RSS", "ratio", "aim")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(fmt(head))
    for r in rows:
        print(fmt(r))
    print()
    print("ratio: mapflow's time per task over the peer's (below 1.00 mapflow is faster); for item 5,")
    print("mapflow sql's whole command over the query alone in C SQLite. Peak RSS: the largest process.")
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
