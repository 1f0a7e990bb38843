#!/usr/bin/env bash
# stop-cluster.sh [--purge] -- stop the daemons tests/slurm/start-cluster.sh started (by pid file only).
#   --purge : also delete SLURM state, logs and the accounting database
set -uo pipefail
RUN_DIR=/run/slurm-local SPOOL=/var/spool/slurm-local LOG_DIR=/var/log/slurm-local
PURGE=0; [ "${1:-}" = --purge ] && PURGE=1

pid_alive() {
  local f=$1 comm=$2 pid
  [ -s "$f" ] || return 1; pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] \
    && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
stop_pid() {
  local f=$1 comm=$2 pid i
  if pid_alive "$f" "$comm"; then
    pid=$(cat "$f"); echo "stopping $comm ($pid)"; kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 75); do pid_alive "$f" "$comm" || break; sleep 0.2; done
    pid_alive "$f" "$comm" && { echo "  $comm did not exit, sending KILL"; kill -KILL "$pid"; sleep 0.5; }
  fi
  rm -f "$f"
}

# cancel our jobs first so no slurmstepd is left behind
if pid_alive "$RUN_DIR/slurmctld.pid" slurmctld; then
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    echo "cancelling jobs: $jobs"; scancel $jobs 2>/dev/null
    for i in $(seq 1 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
stop_pid "$RUN_DIR/slurmd.pid" slurmd
stop_pid "$RUN_DIR/slurmctld.pid" slurmctld
if [ $PURGE = 1 ] && pid_alive /run/mysqld/mysqld.pid mariadbd; then
  mariadb --socket=/run/mysqld/mysqld.sock -e 'DROP DATABASE IF EXISTS slurm_acct_db' 2>/dev/null
fi
stop_pid "$RUN_DIR/slurmdbd.pid" slurmdbd
stop_pid /run/mysqld/mysqld.pid mariadbd
stop_pid /run/munge/munged.pid munged
rm -f "$RUN_DIR/conf.sha"
if [ $PURGE = 1 ]; then
  rm -rf "$SPOOL/ctld" "$SPOOL/d" "$LOG_DIR"
  echo "purged slurm state, logs and accounting DB"
fi
echo "local slurm stopped"
