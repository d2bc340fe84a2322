#!/usr/bin/env bash
# A SLURM cluster on loopback, configured in a folder of its own:
#   tests/slurm/cluster.sh start DIR       # munged, slurmctld and slurmd; waits until the node is idle
#   tests/slurm/cluster.sh start DIR 2     # two nodes, n1 and n2: each slurmd (and so each job) in
#                                          # PID and mount namespaces of its own, so that neither node's
#                                          # jobs can see the other's processes, as on two machines
#   tests/slurm/cluster.sh stop DIR
# Needs Debian's slurm-wlm and munge (`.ci/run` installs them) and root (slurmd runs jobs as their user).
# Everything it writes is under DIR; the daemons listen on 127.0.0.1 only.
set -euo pipefail
cmd=${1:?start or stop}
dir=$(realpath -m "${2:?a folder}")
nodes=${3:-1}
export SLURM_CONF="$dir/slurm.conf"

stop() {
  # The namespaced nodes: their unshare processes (killing one ends its namespace).
  for f in "$dir"/node-*.unshare.pid; do
    [[ -f $f ]] && { kill -9 "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }
  done
  # (A namespaced slurmd's own pid file holds its PID inside its namespace:
  # never read, it would name another process here.)
  for p in "slurmd-$(hostname -s)" slurmctld munged; do
    if [[ -f "$dir/$p.pid" ]]; then kill "$(cat "$dir/$p.pid")" 2>/dev/null || true; fi
  done
  sleep 1
  for p in "slurmd-$(hostname -s)" slurmctld munged; do
    if [[ -f "$dir/$p.pid" ]]; then kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null || true; rm -f "$dir/$p.pid"; fi
  done
}

if [[ $cmd == stop ]]; then stop; exit 0; fi
[[ $cmd == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

mkdir -p "$dir"/{spool,state,munge,log}
chmod 711 "$dir/munge"
mkdir -p "$dir/spool/slurmd-$(hostname -s)" "$dir/spool/slurmd-n1" "$dir/spool/slurmd-n2"
# munged insists on its key being private and its folders not world-writable.
if [[ ! -f "$dir/munge/munge.key" ]]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
fi
host=$(hostname -s)
cpus=$(nproc)
node_lines() {
  if [[ $nodes == 1 ]]; then
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    echo "PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP"
  else
    # Two nodes on one machine: each its own slurmd port; a CPU each, so
    # that an array's tasks spread over both.
    echo "NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=16821 CPUs=1 RealMemory=$((mem / 2)) State=UNKNOWN"
    echo "NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=16822 CPUs=1 RealMemory=$((mem / 2)) State=UNKNOWN"
    echo "PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP"
  fi
}
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$SLURM_CONF" <<CONF
ClusterName=assaytest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CryptoType=crypto/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
MailProg=/bin/true
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
MinJobAge=600
InactiveLimit=0
KillWait=5
Waittime=0
$(node_lines)
CONF
stop
munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" --force
slurmctld -f "$SLURM_CONF" -i
if [[ $nodes == 1 ]]; then
  slurmd -f "$SLURM_CONF"
else
  for n in n1 n2; do
    # In the foreground (-D): a daemon's parent exiting would end the namespace.
    unshare --pid --fork --mount --mount-proc --kill-child=SIGKILL \
      slurmd -D -N "$n" -f "$SLURM_CONF" >"$dir/log/slurmd-$n.out" 2>&1 &
    echo $! > "$dir/node-$n.unshare.pid"
  done
fi
# On a loaded machine (the test suite runs beside it) the node may take a while.
for _ in $(seq 1 180); do
  if [[ $(sinfo -h -N -o '%T' 2>/dev/null | grep -cx idle) == "$nodes" ]]; then echo "slurm up: SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 1
done
echo "the node did not become idle; logs in $dir/log" >&2
sinfo >&2 || true
tail -n 20 "$dir/log/slurmctld.log" "$dir"/log/slurmd* >&2 || true
# Leave nothing running behind a failed start (the caller has no cluster to stop).
stop
exit 1
