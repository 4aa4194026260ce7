package ec2

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/mapflow/mapflow/runtime/remote"
)

// WorkerBinaryEnv names the environment variable that picks the mapflow binary the hosts
// run; the default is the running executable. It must be a linux/amd64 build:
//
//	GOOS=linux GOARCH=amd64 go build -o mapflow-linux ./cmd/mapflow
//	MAPFLOW_WORKER_BINARY=$PWD/mapflow-linux mapflow run job.mf
const WorkerBinaryEnv = remote.WorkerBinaryEnv

// workerBinary returns the path of the binary to stage, checked to be a linux/amd64 ELF.
func workerBinary() (string, error) {
	p, from, err := remote.WorkerBinary()
	if err != nil {
		return "", err
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("the hosts run a linux/amd64 mapflow, but %s (%s) is not an ELF binary: build one with `GOOS=linux GOARCH=amd64 go build ./cmd/mapflow` and set %s to it",
			from, p, WorkerBinaryEnv)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 || (f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX) {
		return "", fmt.Errorf("the hosts run a linux/amd64 mapflow, but %s (%s) is built for %s: build one with `GOOS=linux GOARCH=amd64 go build ./cmd/mapflow` and set %s to it",
			from, p, f.Machine, WorkerBinaryEnv)
	}
	return p, nil
}

// DefaultIdleShutdown is how long a host's worker may sit idle (no chunk finished, no task
// process running) before the host stops it and powers off, when idle_shutdown_timeout is
// not set: a worker waits that way for other hosts' last chunks, or for a driver that died.
const DefaultIdleShutdown = 30 * time.Minute

// hostScript is the parameters of a host's user-data.
type hostScript struct {
	JobID    string
	Staging  string // s3://bucket/prefix/JOBID, where the host's log is copied
	Binary   string // s3:// URL of the mapflow binary
	Store    string // the worker's --store
	Region   string
	Endpoint string // "" for AWS's own
	Idle     int    // seconds a worker may be idle before it is stopped; 0: never
	Keep     bool   // keep_hosts: stay up after the worker ends
	KeepFor  int    // seconds to stay up then; 0: until terminated
}

// userData renders the script a host runs at boot. It holds no credential: the host reads
// and writes S3 through its instance profile. Every value is quoted for the shell.
func userData(h hostScript) (string, error) {
	var b bytes.Buffer
	keep := "0"
	if h.Keep {
		keep = "1"
	}
	err := userDataTemplate.Execute(&b, map[string]string{
		"JobID":    shellQuote(h.JobID),
		"Staging":  shellQuote(h.Staging),
		"Binary":   shellQuote(h.Binary),
		"Store":    shellQuote(h.Store),
		"Region":   shellQuote(h.Region),
		"Endpoint": shellQuote(h.Endpoint),
		"Idle":     strconv.Itoa(h.Idle),
		"Keep":     keep,
		"KeepFor":  strconv.Itoa(h.KeepFor),
		"Starts":   strconv.Itoa(workerStarts),
	})
	return b.String(), err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// The script's end stands for the host's end: it powers the host off (the instances are
// launched with shutdown behavior `terminate`) when the worker is done, died workerStarts
// times, or sat idle; with keep_hosts, after idle_shutdown_timeout (or never). It powers off only
// when it learned its instance id from the instance metadata service, i.e. on EC2: mapflow's
// test harness, which runs this script as a local process in place of a boot, passes
// MAPFLOW_INSTANCE_ID and MAPFLOW_HOME instead, and takes the script's exit for the
// poweroff.
var userDataTemplate = template.Must(template.New("user-data").Parse(`#!/bin/bash
# mapflow host of job {{.JobID}}, written by mapflow's EC2 backend. It holds no credential:
# the host reaches S3 through its instance profile. Its log: $MAPFLOW_HOME/host.log (by
# default /opt/mapflow/host.log), copied to {{.Staging}}/hosts/ at the end.
set -u
job_id={{.JobID}}
staging={{.Staging}}
binary={{.Binary}}
store={{.Store}}
region={{.Region}}
endpoint={{.Endpoint}}
idle={{.Idle}}
keep_hosts={{.Keep}}
keep_for={{.KeepFor}}

home=${MAPFLOW_HOME:-/opt/mapflow}
mkdir -p "$home" || exit 1
cd "$home" || exit 1
log=$home/host.log
say() { echo "mapflow-host: $(date -u +%FT%TZ) $*" | tee -a "$log"; }

on_ec2=0
id=${MAPFLOW_INSTANCE_ID:-}
if [ -z "$id" ]; then
  token=$(curl -sf -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)
  id=$(curl -sf -m 5 -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)
  if [ -z "$id" ]; then
    say "no instance id: not on EC2, and MAPFLOW_INSTANCE_ID is not set"
    exit 1
  fi
  on_ec2=1
fi

aws_s3() {
  if [ -n "$endpoint" ]; then
    aws --region "$region" --endpoint-url "$endpoint" s3 "$@"
  else
    aws --region "$region" s3 "$@"
  fi
}

power_off() {
  aws_s3 cp --only-show-errors "$log" "$staging/hosts/$id.log" || true
  say "powering off"
  if [ "$on_ec2" = 1 ]; then
    shutdown -h now
  fi
  exit "$1"
}

say "instance $id starts the worker of job $job_id"
ok=0
for try in 1 2 3 4 5; do
  if aws_s3 cp --only-show-errors "$binary" "$home/mapflow.tmp" >>"$log" 2>&1; then
    ok=1
    break
  fi
  say "could not fetch $binary (try $try of 5); does the instance profile allow s3:GetObject there?"
  sleep 3
done
if [ "$ok" != 1 ]; then
  power_off 1
fi
chmod 755 "$home/mapflow.tmp" && mv "$home/mapflow.tmp" "$home/mapflow"

# has_children PID: some process has PID for parent (a task the worker runs).
has_children() {
  grep -qs "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status
}

# run_worker runs the worker once and watches it: a worker that has finished no chunk (its
# log did not grow) and run no task process for $idle seconds is stopped.
idled=0
run_worker() {
  "$home/mapflow" worker --store "$store" --id "$1" --host "$id" --dir "$home/work/$1" >>"$log" 2>&1 &
  local pid=$! last now m
  last=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$idle" -gt 0 ]; then
      now=$(date +%s)
      if has_children "$pid"; then
        last=$now
      fi
      m=$(stat -c %Y "$log" 2>/dev/null || echo 0)
      if [ "$m" -gt "$last" ]; then
        last=$m
      fi
      if [ $((now - last)) -ge "$idle" ]; then
        say "the worker was idle for ${idle}s: stopping it"
        idled=1
        kill "$pid" 2>/dev/null
      fi
    fi
  done
  wait "$pid"
}

# A worker that dies (a task killed it, it failed) is marked lost, as the staging protocol
# asks of whoever sees a worker die, so that its unfinished tasks run again; then a worker
# of a new id takes its place, up to {{.Starts}} in all.
status=1
wid=$id
for start in $(seq 1 {{.Starts}}); do
  run_worker "$wid"
  status=$?
  if [ "$status" = 0 ] || [ "$idled" = 1 ]; then
    break
  fi
  say "worker $wid ended with exit status $status: marking it lost"
  tail -n 5 "$log"
  date -u +%FT%TZ | aws_s3 cp --only-show-errors - "$staging/lost/$wid"
  wid=$id.$((start + 1))
  sleep 1
done
say "the worker ended with exit status $status"

if [ "$keep_hosts" = 1 ]; then
  aws_s3 cp --only-show-errors "$log" "$staging/hosts/$id.log" || true
  if [ "$keep_for" -gt 0 ]; then
    say "keep_hosts: staying up for ${keep_for}s"
    sleep "$keep_for"
  else
    say "keep_hosts: staying up until terminated"
    while :; do sleep 3600; done
  fi
fi
power_off "$status"
`))
