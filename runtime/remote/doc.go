// Package remote is how the distributed backends (Hadoop, EC2) hand tasks to workers on other
// machines and get their results back: through a Store (an HDFS directory, an S3 prefix),
// with nothing else shared between the driver and the workers.
//
// # The staging directory
//
// The driver stages a job under a directory of its own:
//
//	job.json                       the Manifest: the job's id, its script text and path, its env
//	ship/PATH                      every shipped file
//	tasks/SSSSS/NNNNNNNN.jsonl     the tasks, in chunks of consecutive indexes, one JSON line each
//	tasks/END                      written once every chunk is, holding their number
//	claims/SSSSS/NNNNNNNN.K        a worker's claim of chunk N's K-th run: its worker id
//	results/SSSSS/NNNNNNNN.K.jsonl the outcome of every attempt of that run's tasks (those not
//	                               in its parts), written when the run ends
//	results/SSSSS/NNNNNNNN.K.P.jsonl part P of the run's outcomes, written while it runs
//	lost/WORKER                    a worker that died; its unfinished claims may be run again
//	cancel                         the job is canceled: workers stop
//
// SSSSS is the chunk's shard, N / 1,000: a directory holds the objects of 1,000 chunks, and a
// reader lists only the shards of the chunks it still waits for (a directory store and HDFS
// read a directory whole, and HDFS caps a directory's items).
//
// Workers are `mapflow worker` processes (in YARN containers, on EC2 hosts). Each reads the
// manifest, checks the script with lang.CheckStaged, and then loops: it claims the first chunk
// nobody holds by creating its claim without overwriting (HDFS's create and S3's
// If-None-Match both refuse a second creator, so exactly one worker wins), runs its tasks with
// runtime.Executor (the same code the local backend runs), and writes the chunk's results:
// what it has every two seconds as a part, the rest in the run's final object. A worker ends
// when every chunk up to END has its final results or a live claim.
//
// The driver streams chunks while the planner still reads the params, and polls results/ for
// new objects, turning each record into the events a Backend reports; so the catalog and the
// progress bar move while the job runs.
//
// # Lost workers
//
// Whoever sees a worker die (the YARN ApplicationMaster when a container exits abnormally, the
// EC2 driver when an instance is gone) writes lost/WORKER. A chunk whose latest claim belongs
// to a lost worker and has no results is claimed again as run K+1; its tasks count one more
// attempt. A re-run writes each task's results as it finishes and runs alone in its worker,
// so its loss is charged to the task it was running. A task lost with its worker more than
// retries + 1 times ends Failed with
// WorkerLost: the first loss may be the machine's fault, a repeated one is likely the task's.
package remote
