"""Python peers of mapflow's expression benchmark: multiprocessing.Pool.map over n tasks of
x + y, alone or with the rows mapflow records written by the standard library's sqlite3.

    python3 bench/peers/mp.py N                  # Pool.map alone
    python3 bench/peers/mp.py N --sqlite FILE    # and every task's row, as mapflow records it

With --sqlite, each task also returns its start and end time, and the parent writes one row
per task (job id, index, name, params JSON, status, host, attempt, start and end time, run
time, result) into a table of the catalog's shape, with executemany, 10,000 rows to a
transaction, in WAL mode with synchronous=NORMAL, as mapflow's catalog is.
"""
import multiprocessing
import os
import socket
import sqlite3
import sys
import time

SCHEMA = """CREATE TABLE tasks (
    job_id TEXT NOT NULL, task_index INTEGER NOT NULL, task_name TEXT, params TEXT,
    status TEXT NOT NULL, host TEXT, attempt INTEGER NOT NULL DEFAULT 0, start_time TEXT,
    end_time TEXT, run_time REAL, result TEXT, exception TEXT, exception_message TEXT,
    exception_traceback TEXT, exit_code INTEGER,
    PRIMARY KEY (job_id, task_index)
) WITHOUT ROWID"""


def add(p):
    x, y = p
    return x + y


def add_timed(p):
    start = time.time()
    x, y = p
    r = x + y
    return r, start, time.time()


_second, _prefix = None, ""


def stamp(t):
    """t as the catalog's UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (the seconds' text cached)."""
    global _second, _prefix
    sec = int(t)
    if sec != _second:
        _second, _prefix = sec, time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(sec))
    return _prefix + "%06d" % int((t - sec) * 1e6)


def main():
    n = int(sys.argv[1])
    db = sys.argv[sys.argv.index("--sqlite") + 1] if "--sqlite" in sys.argv else None
    params = [(i, i) for i in range(1, n + 1)]
    with multiprocessing.Pool(os.cpu_count()) as pool:
        if db is None:
            results = pool.map(add, params)
            assert sum(results) == n * (n + 1)
            return
        results = pool.map(add_timed, params)
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(db + suffix)
        except FileNotFoundError:
            pass
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(SCHEMA)
    job_id = "add-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-0000"
    host = socket.gethostname()
    insert = "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    batch = 10000
    def rows(lo, hi):
        for i in range(lo, hi):
            x, y = params[i]
            r, start, end = results[i]
            # The JSON texts json.dumps would give, without its per-call cost.
            yield (job_id, i, f"add-{i}", f'{{"x":{x},"y":{y}}}', "Completed", host, 1,
                   stamp(start), stamp(end), end - start, str(r), None, None, None, None)

    for off in range(0, n, batch):
        con.execute("BEGIN")
        con.executemany(insert, rows(off, min(off + batch, n)))
        con.execute("COMMIT")
    con.close()
    assert sum(r for r, _, _ in results) == n * (n + 1)


if __name__ == "__main__":
    main()
