"""Dask peer of mapflow's expression benchmark: client.map(add, xs, ys) over n tasks of x + y on
a LocalCluster of one single-threaded worker process per CPU, then client.gather.

    python bench/peers/dask_map.py N ROUNDS

The cluster starts once; each round maps and gathers n fresh tasks (pure=False, so none is
taken from an earlier round). Prints one line: start_s=... round_s=a,b,c (wall seconds).
"""
import os
import sys
import time


def add(x, y):
    return x + y


def main():
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    import dask
    from dask.distributed import Client, LocalCluster

    dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"})
    t0 = time.perf_counter()
    with LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        start = time.perf_counter() - t0
        xs = list(range(1, n + 1))
        walls = []
        for _ in range(rounds):
            t = time.perf_counter()
            futures = client.map(add, xs, xs, pure=False)
            results = client.gather(futures)
            walls.append(time.perf_counter() - t)
            assert sum(results) == n * (n + 1), "wrong sum"
            del futures, results
    print(f"start_s={start:.3f} round_s={','.join(f'{w:.3f}' for w in walls)}")


if __name__ == "__main__":
    main()
