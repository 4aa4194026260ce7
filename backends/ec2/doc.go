// Package ec2 runs a job's tasks on EC2 instances, with the job's files in S3.
//
// # A run
//
// Before anything is started, Run checks what AWS can tell: credentials (the SDK's default
// chain: environment, profile, SSO, instance role), the region (the env block's `region`,
// else the chain's), that the s3_path bucket exists and is reachable, that the AMI exists
// and is x86_64 Linux, that the instance type exists and runs x86_64, and finally a dry-run
// RunInstances with the whole request (subnet, security groups, key pair, instance profile
// and the right to launch). Each failure is an error that points at the env block's setting.
//
// Then it stages the job under s3_path/JOBID/run-TIME (JOBID is the catalog's; a resumed
// job stages afresh) through the runtime/remote protocol (manifest, shipped files, task
// chunks), and the mapflow binary once per content under s3_path/bin/SHA/ (the running
// executable, or the file named by MAPFLOW_WORKER_BINARY; it must be linux/amd64). It
// starts `hosts` instances with RunInstances, tagged mapflow:job-id=JOBID,
// mapflow:staging=JOBID/run-TIME, mapflow:job=NAME, mapflow:env=ENV and Name="mapflow NAME".
// Objects are written without an ACL, so they are private to the bucket's account. The
// staging is left in S3 when the job ends (a lifecycle rule on the prefix can expire it).
//
// Each host runs a task per vCPU of its instance type at once. Programs are claimed one
// task at a time unless tasks_per_claim says otherwise (a few long programs then spread over
// every host, and each result reaches the catalog when it ends); expressions in chunks of up
// to 500, a small job cut into one chunk per thread of all hosts.
//
// Each host's user-data (see userdata.go) fetches the binary with the AWS CLI (`aws s3 cp`,
// present on Amazon Linux) and runs, as root, `mapflow worker --store
// s3://bucket/prefix/JOBID/run-TIME?region=R --id INSTANCE --host INSTANCE`, so every task's
// catalog row names the instance that ran it. The user-data holds no credential, nor a
// presigned URL (which would carry an access key id): the hosts reach S3 through their
// instance profile, which needs s3:GetObject and s3:PutObject on s3_path/* and
// s3:ListBucket on the bucket for that prefix. Instances require IMDSv2, which the
// user-data uses to learn its instance id.
//
// A worker that dies on a live host (a task killed it, it failed) is marked lost by the
// host's script, as the staging protocol asks of whoever sees a worker die, and a worker of
// a new id (INSTANCE.2, INSTANCE.3, ... up to 6) takes its place; so a task that kills its
// worker ends Failed with WorkerLost once its retries are spent, and the others complete.
//
// While the job runs, the driver describes the instances every two seconds. An instance that
// is shutting down or terminated (a spot interruption, a crash, someone's hand) has its
// workers marked lost, so the other workers run its unfinished tasks again. When every
// instance is gone before the job ends, Run starts `hosts` new ones once; if those end too,
// the job fails with the tail of a host's log (copied to s3_path/JOBID/run-TIME/hosts/).
//
// # The end of the hosts
//
// The instances are launched with shutdown behavior `terminate`, and a host powers itself
// off when its worker ends (the job is done or canceled; or its workers died six times).
// Besides, Run terminates every instance of the job when it returns, whether the job
// completed, failed, or was canceled.
//
// idle_shutdown_timeout (default 30m) bounds a worker that sits idle: one that has finished
// no chunk and run no task process for that long is stopped, and its host powers off. Such
// a worker waits for the last chunks of other hosts, or for a driver that died before
// staging every task; so hosts end even when their driver is gone.
//
// keep_hosts = true leaves the instances running after the job: Run does not terminate them
// and prints their ids; each host stays up after its worker ends, for idle_shutdown_timeout
// when it is set (then powers off), else until someone terminates it. This is for looking at
// the hosts (ssh with key_name; the log is /opt/mapflow/host.log, the tasks' directories
// under /opt/mapflow/work); a later job does not reuse them, it starts hosts of its own.
//
// # Endpoints
//
// The env block's `endpoint`, or the SDK's AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2 and
// AWS_ENDPOINT_URL_S3, point the clients at an EC2/S3-compatible service (moto in the
// tests); S3 is then addressed path-style. The workers get the env block's endpoint in their
// store URL and user-data.
package ec2
