#!/usr/bin/env bash
# A real, private systemd user manager for tests on a machine whose PID 1 is not systemd.
# Owns starting and stopping that manager and removing everything it leaves behind; knows
# nothing about apprun's units (tests/_systemd.ts drives it; units/ renders what runs in it).
#
#   eval "$(user-manager.sh start DIR)"   # starts it; prints the exports to talk to it
#   systemctl --user …                     # units live in $XDG_CONFIG_HOME/systemd/user/
#   user-manager.sh stop DIR               # stops it and removes its cgroups and runtime dir
#
# Safety rules (from /work/shared/systemd/user-manager.sh, which this copies and extends):
# - `systemd --user` runs as root in its own mount namespace, with a private tmpfs on
#   /run/systemd holding /run/systemd/system (else it refuses to start) — the host's /run is
#   untouched.
# - It runs in its own sub-cgroup (else it adopts the root cgroup and moves every process of
#   the machine into its init.scope). `stop` SIGKILLs whatever is still inside that sub-cgroup
#   (only processes this manager started live there) and removes it, also after a crash.
# Needs root and a writable /sys/fs/cgroup. Manager logs go to the kernel ring buffer (dmesg).
# Use `systemctl --user show -p SystemState --value`, not is-system-running, from outside.
#
# Three differences from a plain recipe, all so that sandboxed units behave as they would on a
# systemd machine:
# - XDG_RUNTIME_DIR (and so $NOTIFY_SOCKET) is /run/user/<tag>, not under DIR: units with
#   PrivateTmp= cannot see /tmp, and DIR is usually a temp dir.
# - Inside the namespace /run is bind-mounted onto itself. Here /run is a plain directory of
#   the root file system; units with MountAPIVFS= (implied by ProtectProc=, ProcSubset=,
#   ProtectControlGroups=, …) would get an empty tmpfs on /run ("unless already mounted") and
#   lose the notify socket. On a systemd machine /run is always a mount point.
# - /run/systemd/inaccessible/{dir,reg,fifo,chr,blk} exist, as PID 1 creates them: a user
#   manager running as root takes its masks for ProtectHome=yes, InaccessiblePaths=, … from
#   there, and fails such units at step NAMESPACE without them.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
tag="apprun-test-$(echo "$dir" | md5sum | cut -c1-8)"
runtime="/run/user/$tag"
hier() { # the cgroup hierarchies systemd uses: pure cgroup2, or the hybrid named + unified pair
  if [ -e /sys/fs/cgroup/cgroup.procs ]; then echo /sys/fs/cgroup; return; fi
  for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do [ -e "$h/cgroup.procs" ] && echo "$h"; done
}
alive() { # a zombie is gone for our purposes: it waits for PID 1 (here not systemd) to reap it
  local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || true
  [ -n "$s" ] && [ "$s" != Z ]
}
ours() { # the pid in manager.pid may be stale and reused: signal it only while it is in our cgroup
  grep -q ":/$tag\(/\|\$\)" "/proc/$1/cgroup" 2>/dev/null
}
case "$cmd" in
start)
  # CacheDirectory=/StateDirectory= of user units resolve under these: keep them in DIR.
  export XDG_RUNTIME_DIR="$runtime" XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache" \
    XDG_STATE_HOME="$dir/state" XDG_DATA_HOME="$dir/data"
  mkdir -p -m755 /run/user; mkdir -p -m700 "$XDG_RUNTIME_DIR"
  mkdir -p "$XDG_CONFIG_HOME/systemd/user"
  (
    for h in $(hier); do mkdir -p "$h/$tag"; echo $BASHPID >"$h/$tag/cgroup.procs"; done
    exec unshare --mount --propagation private sh -c '
      set -e
      mount --bind /run /run
      mkdir -p /run/systemd && mount -t tmpfs -o mode=755 tmpfs /run/systemd
      mkdir /run/systemd/system /run/systemd/inaccessible
      cd /run/systemd/inaccessible
      mkdir -m0 dir; : >reg; chmod 0 reg; mkfifo -m0 fifo; mknod -m0 chr c 0 0; mknod -m0 blk b 0 0
      exec /usr/lib/systemd/systemd --user --log-target=kmsg'
  ) </dev/null >"$dir/manager.out" 2>&1 &
  echo $! >"$dir/manager.pid"
  for _ in $(seq 1 200); do
    [ "$(systemctl --user show -p SystemState --value 2>/dev/null)" = running ] && break
    alive "$(cat "$dir/manager.pid")" || { echo "manager died: $(cat "$dir/manager.out")" >&2; exit 1; }
    sleep 0.05
  done
  [ "$(systemctl --user show -p SystemState --value 2>/dev/null)" = running ] ||
    { echo "manager did not reach 'running' in 10 s" >&2; exit 1; }
  # APPRUN_SYSTEMD_CGROUP names the sub-cgroup (under each hierarchy in /sys/fs/cgroup).
  echo "export XDG_RUNTIME_DIR='$XDG_RUNTIME_DIR' XDG_CONFIG_HOME='$XDG_CONFIG_HOME'" \
    "APPRUN_SYSTEMD_CGROUP='$tag'"
  ;;
stop)
  export XDG_RUNTIME_DIR="$runtime" XDG_CONFIG_HOME="$dir/config"
  pid=$(cat "$dir/manager.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && ours "$pid"; then
    systemctl --user exit 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  # Whatever is left in our sub-cgroup was started by this manager: end it, then remove the
  # (now empty) cgroup directories, deepest first.
  for _ in $(seq 1 40); do
    left=$(for h in $(hier); do [ -d "$h/$tag" ] && find "$h/$tag" -name cgroup.procs -exec cat {} +; done 2>/dev/null | sort -u)
    [ -z "$left" ] && break
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.05
  done
  for h in $(hier); do [ -d "$h/$tag" ] && find "$h/$tag" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  rm -rf -- "$runtime"
  rm -f "$dir/manager.pid"
  for h in $(hier); do [ ! -d "$h/$tag" ] || { echo "cgroup $h/$tag still present" >&2; exit 1; }; done
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
