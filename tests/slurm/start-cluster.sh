#!/usr/bin/env bash
# start-cluster.sh [SITE] -- a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd on MariaDB,
# munge, fake GPUs) named and shaped like one HPC site, for the profile tests (tests/slurm/).
# Debian 12, run as root, no systemd needed: every daemon is started by hand and tracked by pid file.
#
#   tests/slurm/start-cluster.sh lumi        # partitions, accounts, QOS and GPUs of tests/slurm/sites/lumi.env
#   tests/slurm/stop-cluster.sh [--purge]
#
# SITE is a file tests/slurm/sites/SITE.env (default: generic). Each CLUSTER_* value it sets can be
# overridden from the environment:
#   CLUSTER_PARTITIONS  space list NAME[:MAXTIME] (the first is the default partition)
#   CLUSTER_ACCOUNTS    accounts root may charge (others are rejected: AccountingStorageEnforce)
#   CLUSTER_QOS         QOS root may use; "normal" is the default QOS
#   CLUSTER_GPUS        fake GPUs on the node (0: no GRES); CLUSTER_GPU_TYPE an optional GRES type
#   CLUSTER_CPUS, CLUSTER_MEM_MB  what the node advertises (config_overrides: may exceed the machine)
#   CLUSTER_EXTRA_CONF  lines appended to slurm.conf
#   CLUSTER_NO_INSTALL=1 never call apt-get; CLUSTER_SMOKE=1 run one job at the end; CLUSTER_CLEAN=1 wipe state
#
# Idempotent: the same site again costs ~1 s; another site rewrites the configuration and restarts
# slurmctld/slurmd/slurmdbd (5-10 s). The first run installs the Debian packages (~1 min).
# Adapted from the measured reference set-up (SLURM 22.05, Debian 12).
set -euo pipefail

T_START=$(date +%s.%N)
log() { printf '[start-cluster %6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T_START" | bc)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts munged, MariaDB and the SLURM daemons)"

SITE=${1:-${CLUSTER_SITE:-generic}}
SITE_FILE="$(cd "$(dirname "$0")" && pwd)/sites/$SITE.env"
[ -f "$SITE_FILE" ] || die "no site file $SITE_FILE (sites: $(ls "$(dirname "$SITE_FILE")" | sed 's/\.env$//' | tr '\n' ' '))"
# the environment wins over the site file
for var in PARTITIONS ACCOUNTS QOS GPUS GPU_TYPE CPUS MEM_MB; do
  eval "_env_$var=\${CLUSTER_$var-__unset__}"
done
# shellcheck disable=SC1090
. "$SITE_FILE"
for var in PARTITIONS ACCOUNTS QOS GPUS GPU_TYPE CPUS MEM_MB; do
  eval "[ \"\$_env_$var\" = __unset__ ] || CLUSTER_$var=\$_env_$var"
done

ACCOUNTING=slurmdbd
CLUSTER=localci
CONF_DIR=/etc/slurm
SPOOL=/var/spool/slurm-local
LOG_DIR=/var/log/slurm-local
RUN_DIR=/run/slurm-local
FAKEGPU_DIR=$SPOOL/fakegpu
DB_NAME=slurm_acct_db DB_USER=slurm DB_PASS=slurm-local-ci
MYSQL_SOCK=/run/mysqld/mysqld.sock

MEM_TOTAL_MB=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
CPUS=${CLUSTER_CPUS:-$(nproc)}
MEM_MB=${CLUSTER_MEM_MB:-$(( MEM_TOTAL_MB * 80 / 100 ))}
GPUS=${CLUSTER_GPUS:-0}
GPU_TYPE=${CLUSTER_GPU_TYPE:-}
PARTITIONS=${CLUSTER_PARTITIONS:?site file sets no CLUSTER_PARTITIONS}
ACCOUNTS=${CLUSTER_ACCOUNTS:?site file sets no CLUSTER_ACCOUNTS}
QOS_LIST=${CLUSTER_QOS:-normal}
case " $QOS_LIST " in *" normal "*) ;; *) QOS_LIST="normal $QOS_LIST";; esac
ENFORCE=associations,limits,qos

# ---------------------------------------------------------------- helpers
# pid_alive PIDFILE COMM  -> 0 if the pid in PIDFILE is alive and its comm matches
pid_alive() {
  local f=$1 comm=$2 pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  # a zombie (never reaped when PID 1 is not an init) counts as dead
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
# stop_pid PIDFILE COMM: TERM, wait up to 15 s, then KILL (only that pid)
stop_pid() {
  local f=$1 comm=$2 pid i
  if pid_alive "$f" "$comm"; then
    pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 75); do pid_alive "$f" "$comm" || break; sleep 0.2; done
    if pid_alive "$f" "$comm"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  fi
  rm -f "$f"
}
# wait_for SECONDS DESCRIPTION CMD... : poll every 0.2 s
wait_for() {
  local secs=$1 what=$2 i; shift 2
  for i in $(seq 1 $(( secs * 5 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${secs}s waiting for $what"
}

# ---------------------------------------------------------------- packages
PKGS="munge slurmctld slurmd slurm-client"
[ "$ACCOUNTING" = slurmdbd ] && PKGS="$PKGS slurmdbd mariadb-server"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ "${CLUSTER_NO_INSTALL:-0}" = 1 ] && die "missing packages:$missing"
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101 keeps dpkg from trying to start services (there is no init system)
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; RM_POLICY=1; fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq || apt-get -o DPkg::Lock::Timeout=300 update
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing >/dev/null
  [ "${RM_POLICY:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
fi

# ---------------------------------------------------------------- dirs / clean
if [ "${CLUSTER_CLEAN:-0}" = 1 ]; then
  log "CLUSTER_CLEAN=1: stopping daemons and wiping state"
  stop_pid "$RUN_DIR/slurmd.pid" slurmd
  stop_pid "$RUN_DIR/slurmctld.pid" slurmctld
  stop_pid "$RUN_DIR/slurmdbd.pid" slurmdbd
  rm -rf "$SPOOL/ctld" "$SPOOL/d" "$RUN_DIR/conf.sha"
  if pid_alive /run/mysqld/mysqld.pid mariadbd; then
    mariadb --socket=$MYSQL_SOCK -e "DROP DATABASE IF EXISTS $DB_NAME" || true
  fi
fi
mkdir -p "$SPOOL/ctld" "$SPOOL/d" "$LOG_DIR" "$RUN_DIR" "$CONF_DIR" "$FAKEGPU_DIR"

# ---------------------------------------------------------------- config files
NODE_GRES=""
if [ "$GPUS" -gt 0 ]; then
  for i in $(seq 0 $(( GPUS - 1 ))); do [ -e "$FAKEGPU_DIR/gpu$i" ] || touch "$FAKEGPU_DIR/gpu$i"; done
  if [ -n "$GPU_TYPE" ]; then NODE_GRES="Gres=gpu:$GPU_TYPE:$GPUS"; TYPE_KV="Type=$GPU_TYPE"; else NODE_GRES="Gres=gpu:$GPUS"; TYPE_KV=""; fi
fi

if [ "$ACCOUNTING" = slurmdbd ]; then
  ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=$ENFORCE
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none"
else
  ACCT_CONF="AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log"
fi

PART_CONF=""; first=1
for p in $PARTITIONS; do
  name=${p%%:*}; mt=INFINITE; [ "$name" != "$p" ] && mt=${p#*:}
  def=NO; [ $first = 1 ] && def=YES; first=0
  PART_CONF+="PartitionName=$name Nodes=localhost Default=$def MaxTime=$mt DefaultTime=01:00:00 State=UP OverSubscribe=NO"$'\n'
done

NEW_SLURM_CONF="# generated by tests/slurm/start-cluster.sh $SITE -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire (default 120 s) before it may start again: 10 s keeps the requeue test short
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
$ACCT_CONF
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=5
SlurmdParameters=config_overrides
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge=300
KillWait=5
InactiveLimit=0
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$CPUS RealMemory=$MEM_MB $NODE_GRES State=UNKNOWN
$PART_CONF${CLUSTER_EXTRA_CONF:-}"

NEW_GRES_CONF="AutoDetect=off"
[ "$GPUS" -gt 0 ] && NEW_GRES_CONF+=$'\n'"NodeName=localhost Name=gpu $TYPE_KV File=$FAKEGPU_DIR/gpu[0-$(( GPUS - 1 ))]"

NEW_DBD_CONF="AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
DebugLevel=info"

NEW_SHA=$(printf '%s\n%s\n%s\n%s' "$NEW_SLURM_CONF" "$NEW_GRES_CONF" "$NEW_DBD_CONF" "$ACCOUNTING" | sha256sum | cut -d' ' -f1)
OLD_SHA=$(cat "$RUN_DIR/conf.sha" 2>/dev/null || true)
CONF_CHANGED=0
if [ "$NEW_SHA" != "$OLD_SHA" ] || [ ! -s "$CONF_DIR/slurm.conf" ]; then
  CONF_CHANGED=1
  printf '%s\n' "$NEW_SLURM_CONF" > "$CONF_DIR/slurm.conf"
  printf '%s\n' "$NEW_GRES_CONF"  > "$CONF_DIR/gres.conf"
  if [ "$ACCOUNTING" = slurmdbd ]; then
    printf '%s\n' "$NEW_DBD_CONF" > "$CONF_DIR/slurmdbd.conf"; chmod 600 "$CONF_DIR/slurmdbd.conf"
  fi
  log "wrote $CONF_DIR/slurm.conf (CPUs=$CPUS RealMemory=$MEM_MB GPUs=$GPUS accounting=$ACCOUNTING)"
fi

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"
  if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge; chmod 0755 /run/munge; chmod 0700 /etc/munge
if ! pid_alive /run/munge/munged.pid munged || ! (munge -n | unmunge) >/dev/null 2>&1; then
  stop_pid /run/munge/munged.pid munged
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
  wait_for 10 munged bash -c 'munge -n | unmunge'
fi

# ---------------------------------------------------------------- mariadb + slurmdbd
if [ "$ACCOUNTING" = slurmdbd ]; then
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    log "initialising MariaDB datadir"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  if ! pid_alive /run/mysqld/mysqld.pid mariadbd; then
    log "starting mariadbd"
    # setsid+nohup: fully detached from this shell; unix socket only
    setsid nohup /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
      --socket=$MYSQL_SOCK --pid-file=/run/mysqld/mysqld.pid --skip-networking \
      --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
      >"$LOG_DIR/mariadb.log" 2>&1 < /dev/null &
    wait_for 60 mariadbd mariadb-admin --socket=$MYSQL_SOCK ping
  fi
  mariadb --socket=$MYSQL_SOCK -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost'; FLUSH PRIVILEGES;"
  if [ $CONF_CHANGED = 1 ] || ! pid_alive "$RUN_DIR/slurmdbd.pid" slurmdbd; then
    stop_pid "$RUN_DIR/slurmdbd.pid" slurmdbd
    log "starting slurmdbd"
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n show cluster
  fi
  # cluster must exist in the DB before slurmctld registers
  sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
else
  stop_pid "$RUN_DIR/slurmdbd.pid" slurmdbd
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if [ $CONF_CHANGED = 1 ] || ! pid_alive "$RUN_DIR/slurmctld.pid" slurmctld; then
  stop_pid "$RUN_DIR/slurmd.pid" slurmd
  stop_pid "$RUN_DIR/slurmctld.pid" slurmctld
  log "starting slurmctld"
  slurmctld
  wait_for 30 slurmctld scontrol ping
fi
if [ $CONF_CHANGED = 1 ] || ! pid_alive "$RUN_DIR/slurmd.pid" slurmd; then
  stop_pid "$RUN_DIR/slurmd.pid" slurmd
  log "starting slurmd"
  slurmd -N localhost
fi
echo "$NEW_SHA" > "$RUN_DIR/conf.sha"

node_ok() { sinfo -h -N -n localhost -o '%T' | head -1 | grep -qE '^(idle|mixed|allocated|completing)$'; }
for i in $(seq 1 150); do
  node_ok && break
  st=$(sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -1 || true)
  # drained/invalid from a previous config -> resume once registered
  case "$st" in *drain*|*down*|*inval*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true;; esac
  sleep 0.2
done
node_ok || { sinfo -N -o '%N %T %E' >&2; die "node localhost did not become idle (see $LOG_DIR/slurmd.log)"; }

# ---------------------------------------------------------------- accounts / QOS
if [ "$ACCOUNTING" = slurmdbd ]; then
  have_qos=$(sacctmgr -n -P show qos format=name)
  add_qos=""; for q in $QOS_LIST; do grep -qx "$q" <<<"$have_qos" || add_qos+="${add_qos:+,}$q"; done
  [ -n "$add_qos" ] && sacctmgr -i add qos "$add_qos" >/dev/null
  have_acc=$(sacctmgr -n -P show account format=account)
  add_acc=""; for a in $ACCOUNTS; do grep -qx "$a" <<<"$have_acc" || add_acc+="${add_acc:+,}$a"; done
  [ -n "$add_acc" ] && sacctmgr -i add account "$add_acc" cluster="$CLUSTER" >/dev/null
  qcsv=$(tr ' ' ',' <<<"$QOS_LIST"); acsv=$(tr ' ' ',' <<<"$ACCOUNTS"); first_acc=${ACCOUNTS%% *}
  have_assoc=$(sacctmgr -n -P show assoc user=root format=account | sort -u)
  add_u=""; for a in $ACCOUNTS; do grep -qx "$a" <<<"$have_assoc" || add_u+="${add_u:+,}$a"; done
  if [ -n "$add_u" ]; then
    sacctmgr -i add user root account="$add_u" cluster="$CLUSTER" >/dev/null
  fi
  sacctmgr -i modify user root set defaultaccount="$first_acc" >/dev/null 2>&1 || true
  # another site's accounts must not be usable here: drop root's other associations (not the built-in
  # root account); this fails harmlessly while a job of that account still runs
  for a in $have_assoc; do
    case " $ACCOUNTS root " in *" $a "*) ;; *) sacctmgr -i delete user name=root account="$a" >/dev/null 2>&1 || true;; esac
  done
  # exactly this site's QOS (a QOS of another site is rejected)
  sacctmgr -i modify user root set qos="$qcsv" defaultqos=normal >/dev/null 2>&1 || true
  log "accounting: accounts=[$acsv] qos=[$qcsv]"
fi

# ---------------------------------------------------------------- smoke test
if [ "${CLUSTER_SMOKE:-0}" = 1 ]; then
  jid=$(sbatch --parsable -p "${PARTITIONS%%:*}" -t 1 --mem 100 -o /dev/null --wrap 'srun -n1 true')
  state=""
  for i in $(seq 1 150); do
    state=$(squeue -h -j "$jid" -o %T 2>/dev/null || true)
    [ -z "$state" ] || [ "$state" = COMPLETED ] && break
    sleep 0.2
  done
  if [ "$ACCOUNTING" = slurmdbd ]; then
    for i in $(seq 1 50); do state=$(sacct -X -n -P -j "$jid" -o State 2>/dev/null | head -1); [ "$state" = COMPLETED ] && break; sleep 0.2; done
  else
    state=$(squeue -h -j "$jid" -t all -o %T)
  fi
  [ "$state" = COMPLETED ] || die "smoke job $jid ended in state '$state'"
  log "smoke job $jid COMPLETED"
fi

log "cluster '$CLUSTER' up: $(sinfo -h -o '%P' | tr '\n' ' ')"
