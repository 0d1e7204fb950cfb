#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, from Debian's packages: for trying `hydra/launcher=slurm`
# (preemption, requeue, time limits) without a cluster, and for the tests marked `slurm`.
#
#   scripts/slurm_local.sh start    install slurm-wlm + munge when missing, write slurm.conf for this
#                                   host's cores and memory, start munged, slurmctld, slurmd, wait for idle
#   scripts/slurm_local.sh stop     stop the three daemons (jobs still running are killed)
#   scripts/slurm_local.sh status   exit 0 with the node's state when the cluster answers, 1 otherwise
#
# Needs root. Every daemon and client talks over loopback only: SlurmctldHost=<host>(127.0.0.1) and
# NodeAddr=127.0.0.1 are the only addresses anyone connects to; with CommunicationParameters=NoInAddrAny
# slurmd also listens on 127.0.0.1 alone (slurmctld 22.05 still listens on every address, so
# nothing but loopback ever reaches it on a closed machine). There is no accounting database: `sacct` fails, job states come
# from `squeue` (rnn_gradients.slurm_launcher falls back to it).
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/rnn-gradients-slurm}  # spool, state, logs, pid files
CONF=/etc/slurm/slurm.conf
MARK="# written by rnn-gradients scripts/slurm_local.sh"
HOST=$(hostname -s)

die() { echo "slurm_local: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get to install them"
    echo "slurm_local: installing slurm-wlm and munge (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: refusing to replace a real cluster's config"
    fi
    mkdir -p /etc/slurm "$STATE"/{ctld,d,log}
    # `slurmd -C` prints this node's real CPUs, sockets, cores and memory in slurm.conf syntax; a node
    # configured with more than it has would be drained.
    local node
    node=$(slurmd -C | head -1)
    cat >"$CONF" <<EOF
$MARK
ClusterName=rnngradients
SlurmctldHost=$HOST(127.0.0.1)
CommunicationParameters=NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups in a container: SLURM 22.05 rejects CgroupPlugin=disabled, so no cgroup.conf and these two.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Short timers: a killed job frees its cores within seconds.
KillWait=5
MinJobAge=300
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return  # already running
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- munged  # munged refuses to run as root
}

running() { [[ -f $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

node_state() { { sinfo -h -N -n "$HOST" -o %t 2>/dev/null || true; } | head -1; }

start() {
    [[ $(id -u) == 0 ]] || die "needs root (it installs packages and starts daemons)"
    install_packages
    write_conf
    start_munge
    running slurmctld || slurmctld -c -i  # -c: a fresh cluster, no jobs left from an earlier start
    running slurmd || slurmd -N "$HOST"
    for _ in $(seq 1 60); do
        case $(node_state) in
            idle*|mix*|alloc*) echo "slurm_local: node $HOST is $(node_state) (config $CONF, logs $STATE/log)"; return ;;
            drain*|down*|fail*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    tail -5 "$STATE"/log/*.log >&2 || true
    die "node $HOST did not become idle in 30 s (state: $(node_state || echo none))"
}

stop() {
    for daemon in slurmd slurmctld; do
        if running $daemon; then
            local pid
            pid=$(cat "$STATE/$daemon.pid")
            kill "$pid"
            for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        fi
    done
    pkill -u munge -x munged 2>/dev/null || true
    echo "slurm_local: stopped"
}

status() {
    local state
    state=$(node_state)
    [[ -n $state ]] || { echo "slurm_local: no cluster answers"; return 1; }
    echo "slurm_local: node $HOST is $state"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
