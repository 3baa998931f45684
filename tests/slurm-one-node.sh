#!/bin/sh
# A one-node Slurm cluster on this machine (Debian's slurm-wlm: slurmctld + slurmd on localhost, munge),
# for tests/test_executors.py's real-Slurm tests (they skip while no `sinfo` answers).  Run as root on a
# throw-away machine or CI runner; it takes about two minutes (mostly apt).  Not for a real cluster.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
host=$(hostname)
cpus=$(nproc)

mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || (dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null &&
                                chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key)
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
# No cgroups (containers rarely allow them): processes are tracked by their parent pid.  JobRequeue lets
# submitit requeue a preempted job (`scontrol requeue`).  No accounting: submitit reads results from files.
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in 1 2 3 4 5 6 7 8 9 10; do
    sinfo -h -o %T 2>/dev/null | grep -q idle && { sinfo; exit 0; }
    sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
exit 1
