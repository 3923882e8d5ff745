#!/usr/bin/env bash
# Boots a private systemd, so a unit can be started for real on a machine whose PID 1 is not
# systemd (a CI container or VM). systemd runs as PID 1 of new pid, mount, network, UTS, IPC and
# cgroup namespaces, on an overlay of the host's root whose writes land in a tmpfs: installing,
# useradd and systemctl inside change nothing on the host. Like systemd-nspawn, it gets a
# read-only /sys and /proc/sys, a private /dev, /run and /tmp, its own cgroup subtrees (removed
# at stop), and the units that touch the kernel or the hardware masked.
#
# Usage: systemd-ns.sh start DIR    boots; prints the host pid of that systemd once it runs
#        systemd-ns.sh stop DIR     powers it off (kills it after 30 s) and cleans up
#        systemd-ns.sh inner DIR    (internal: the namespace's first process)
# Run commands inside with: nsenter -t PID -a -r -w COMMAND...
set -euo pipefail
cmd="${1:?usage: systemd-ns.sh start|stop DIR}"
dir="${2:?usage: systemd-ns.sh start|stop DIR}"
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"

masked=(
  systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service kmod-static-nodes.service
  systemd-tmpfiles-setup-dev.service systemd-udevd.service systemd-udevd-control.socket
  systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service
  systemd-hwdb-update.service systemd-remount-fs.service systemd-timesyncd.service
  systemd-pstore.service systemd-random-seed.service systemd-firstboot.service
  systemd-machine-id-commit.service systemd-journald-audit.socket systemd-boot-update.service
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount sys-kernel-debug.mount
  sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount
  dev-hugepages.mount dev-mqueue.mount tmp.mount swap.target cryptsetup.target
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer dpkg-db-backup.timer
)

case "$cmd" in
start)
  mkdir -p "$dir/t" "$dir/root"
  : > "$dir/cgroups"
  # One child cgroup per mounted hierarchy, below this process's own; systemd sees it as its root.
  for m in /sys/fs/cgroup/*; do
    [ -d "$m" ] && [ ! -L "$m" ] && mountpoint -q "$m" || continue
    name="$(basename "$m")"
    if [ "$(stat -f -c %T "$m")" = cgroup2fs ]; then
      path="$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)"
    else
      path="$(awk -F: -v n="$name" '$2 == n || $2 == "name=" n { print $3 }' /proc/self/cgroup)"
    fi
    sub="$m${path%/}/clawchat-ns-$$"
    mkdir "$sub"
    if [ -f "$sub/cpuset.cpus" ]; then   # a new cpuset has no CPUs and no memory nodes until given
      cat "$(dirname "$sub")/cpuset.cpus" > "$sub/cpuset.cpus"
      cat "$(dirname "$sub")/cpuset.mems" > "$sub/cpuset.mems"
    fi
    echo "$name $sub" >> "$dir/cgroups"
  done
  # The first process joins those cgroups, then becomes the namespaces' init.
  setsid bash -c '
    while read -r name sub; do echo $$ > "$sub/cgroup.procs"; done < "$1/cgroups"
    exec unshare --mount --pid --fork --net --uts --ipc --cgroup --propagation private "$2" inner "$1"
  ' _ "$dir" "$self" > "$dir/console.log" 2>&1 < /dev/null &
  echo $! > "$dir/unshare.pid"
  for _ in $(seq 1 100); do
    kill -0 "$(cat "$dir/unshare.pid")" 2>/dev/null || break
    pid="$(pgrep -P "$(cat "$dir/unshare.pid")" 2>/dev/null | head -n1 || true)"
    if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = systemd ]; then
      state="$(nsenter -t "$pid" -a -r -w systemctl is-system-running 2>/dev/null || true)"
      case "$state" in running|degraded) echo "$pid" > "$dir/systemd.pid"; echo "$pid"; exit 0 ;; esac
    fi
    sleep 0.2
  done
  echo "systemd-ns: systemd did not come up (state: ${state:-none}); console:" >&2
  cat "$dir/console.log" >&2
  "$self" stop "$dir" || true
  exit 1
  ;;

inner)
  # PID 1 of the new namespaces, still the host's root: build the root, then exec systemd.
  mount --make-rprivate /
  mount -t tmpfs -o mode=0755 tmpfs "$dir/t"
  mkdir -p "$dir/t/upper" "$dir/t/work"
  r="$dir/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/t/upper,workdir=$dir/t/work" "$r"
  mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
  for p in sys sysrq-trigger; do
    [ -e "$r/proc/$p" ] || continue
    mount --bind "$r/proc/$p" "$r/proc/$p"; mount -o remount,bind,ro "$r/proc/$p"
  done
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
  mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs "$r/sys/fs/cgroup"
  while read -r name sub; do
    mkdir -p "$r/sys/fs/cgroup/$name"
    mount --bind "$sub" "$r/sys/fs/cgroup/$name"
  done < "$dir/cgroups"
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$r/dev"
  for d in null zero full random urandom tty; do touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
  touch "$r/dev/console"; mount --bind /dev/null "$r/dev/console"
  mkdir -p "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
  ln -s pts/ptmx "$r/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
  ln -s /proc/self/fd "$r/dev/fd"
  ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$r/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/tmp"
  mkdir -p "$r/etc/systemd/system"
  for u in "${masked[@]}"; do ln -sfn /dev/null "$r/etc/systemd/system/$u"; done
  cat > "$r/etc/systemd/system/clawchat-ns.target" <<'UNIT'
[Unit]
Description=A bare system for the install test
Requires=sysinit.target
After=sysinit.target
AllowIsolate=yes
UNIT
  echo clawchat-ns > "$r/etc/hostname"
  cd "$r"
  exec chroot "$r" /usr/bin/env -i container=clawchat-ns PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=clawchat-ns.target --show-status=false
  ;;

stop)
  pid="$(cat "$dir/systemd.pid" 2>/dev/null || true)"
  upid="$(cat "$dir/unshare.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    nsenter -t "$pid" -a -r -w systemctl poweroff --no-block >/dev/null 2>&1 || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  fi
  if [ -n "$upid" ]; then
    for _ in $(seq 1 50); do kill -0 "$upid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$upid" 2>/dev/null || true
  fi
  # Remove the cgroup subtrees, deepest first (they are empty once every process is gone).
  if [ -f "$dir/cgroups" ]; then
    while read -r name sub; do
      [ -d "$sub" ] || continue
      for _ in $(seq 1 50); do
        find "$sub" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ -d "$sub" ] || break
        sleep 0.1
      done
      [ -d "$sub" ] && echo "systemd-ns: could not remove $sub" >&2
    done < "$dir/cgroups"
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: systemd-ns.sh start|stop DIR" >&2; exit 2 ;;
esac
