# Shared helpers for scripts/hadoop-minicluster and scripts/moto. Source it; do not run it.
# shellcheck shell=bash

# The repository root and the cache dir (MAPFLOW_CACHE, default REPO/.cache, git-ignored).
MAPFLOW_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
MAPFLOW_CACHE_DIR=${MAPFLOW_CACHE:-$MAPFLOW_REPO/.cache}

die() {
  echo "$(basename "$0"): error: $*" >&2
  exit 1
}

log() {
  echo "$(basename "$0"): $*" >&2
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH${2:+ ($2)}"
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line. All N sockets are held
# open together so the ports differ; another process may still take one before it is used.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# proc_live PID: true when the process exists and is not a zombie (a process whose parent has
# exited is reaped by whatever adopted it, which may be slow or never, e.g. a shell as PID 1).
proc_live() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 0
  [[ $st != Z ]]
}

# pid_alive PIDFILE [PATTERN]: true when PIDFILE names a live process (whose command line
# contains PATTERN, if given: guards against a recycled pid). Prints nothing.
pid_alive() {
  local pidfile=$1 pattern=${2:-} pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  proc_live "$pid" || return 1
  if [[ -n $pattern ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  fi
}

# stop_pid PIDFILE NAME [GRACE_SECONDS]: SIGTERM the process, wait, then SIGKILL; removes PIDFILE.
stop_pid() {
  local pidfile=$1 name=$2 grace=${3:-30} pid i
  if [[ ! -s $pidfile ]]; then
    log "$name is not running"
    return 0
  fi
  pid=$(<"$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && proc_live "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      proc_live "$pid" || break
      sleep 0.1
    done
    if proc_live "$pid"; then
      log "$name (pid $pid) did not stop in ${grace}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        proc_live "$pid" || break
        sleep 0.1
      done
    fi
    log "stopped $name (pid $pid)"
  else
    log "$name is not running (stale pid file)"
  fi
  rm -f "$pidfile"
}

# url_ok URL [GREP_PATTERN]: true when URL answers 2xx (and its body matches the pattern).
url_ok() {
  local body
  body=$(curl -fsS --max-time 5 "$1" 2>/dev/null) || return 1
  [[ -z ${2:-} ]] || grep -qE -- "$2" <<<"$body"
}

# log_tail FILE [N]: prints the last N lines of a log, indented, to stderr.
log_tail() {
  local f=$1 n=${2:-40}
  if [[ -s $f ]]; then
    echo "---- last $n lines of $f ----" >&2
    tail -n "$n" "$f" | sed 's/^/  /' >&2
    echo "----" >&2
  fi
}

# export_line NAME=VALUE...: prints one `export` line with each value shell-quoted.
export_line() {
  local out="export" kv
  for kv in "$@"; do
    out+=" ${kv%%=*}=$(printf '%q' "${kv#*=}")"
  done
  echo "$out"
}
