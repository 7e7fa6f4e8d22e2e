#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the `--slurm` test.
#
#   tests/slurm/cluster.sh start DIR   starts munged, slurmctld and slurmd with
#                                      their state, logs and pids under DIR and
#                                      prints `export SLURM_CONF=DIR/slurm.conf`
#   tests/slurm/cluster.sh stop DIR    stops what `start` started (by its pids)
#   tests/slurm/cluster.sh logs DIR    prints the daemons' logs
#
# Needs root and Debian's `slurm-wlm` and `munge` packages (SLURM 22.05).
# Runs everything as root on localhost, without systemd and without cgroups
# (proctrack/linuxproc, task/none); no accounting daemon, so no `sacct`.
set -euo pipefail

usage() { echo "usage: $0 start|stop|logs DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
export SLURM_CONF="$dir/slurm.conf"

start() {
    for tool in munged slurmctld slurmd sbatch; do
        command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install slurm-wlm munge" >&2; exit 1; }
    done
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"

    # munge: its socket folder and log belong to the munge user, who runs it.
    mkdir -p /run/munge /var/log/munge
    chown munge:munge /run/munge /var/log/munge
    [ ! -e /var/log/munge/munged.log ] || chown munge:munge /var/log/munge/munged.log
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
        setsid setpriv --reuid=munge --regid=munge --init-groups munged -F \
            >"$dir/log/munged.out" 2>&1 </dev/null &
        echo $! >"$dir/munged.pid"
        for _ in $(seq 50); do
            munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
            sleep 0.1
        done
        munge -n | unmunge >/dev/null || { echo "munged did not start" >&2; cat "$dir/log/munged.out" >&2; exit 1; }
    fi

    local host
    host=$(hostname)
    cat >"$SLURM_CONF" <<CONF
ClusterName=ae
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/ctld.log
SlurmdLogFile=$dir/log/d.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    setsid slurmctld -D -i >"$dir/log/ctld.out" 2>&1 </dev/null &
    echo $! >"$dir/ctld.pid"
    setsid slurmd -D >"$dir/log/d.out" 2>&1 </dev/null &
    echo $! >"$dir/d.pid"
    for _ in $(seq 100); do
        if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
            echo "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.2
    done
    echo "the one-node cluster did not become idle in 20 s" >&2
    logs >&2
    exit 1
}

stop() {
    # By the pids `start` kept, never by name: other daemons may be running.
    for name in d ctld munged; do
        if [ -f "$dir/$name.pid" ]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
            rm -f "$dir/$name.pid"
        fi
    done
}

logs() {
    for log in "$dir"/log/*; do
        [ -f "$log" ] || continue
        echo "==== $log"
        tail -n 50 "$log"
    done
}

case $action in
    start) start ;;
    stop) stop ;;
    logs) logs ;;
    *) usage ;;
esac
