#!/usr/bin/env bash
# Lets real dpkg install real packages "into the system" of a private systemd user manager
# (scripts/systemd/user-manager.sh, tests/_systemd.ts) without touching this machine's /usr,
# /etc or /var, so a package's maintainer scripts run exactly as shipped. Owns the bridge
# only: the overlays and binds it makes live in the manager's mount namespace and die with it;
# the wrappers live in STATE_DIR/bridge, which the manager's owner removes.
#
#   dpkg-bridge.sh setup MANAGER_PID STATE_DIR          # once per manager
#   dpkg-bridge.sh run MANAGER_PID STATE_DIR CMD [ARG…]  # e.g. dpkg -i x.deb
#
# What the bridge does, and why each part is needed:
# - In the manager's mount namespace, /usr, /etc and /var become overlays whose changes go to
#   a tmpfs: dpkg writes its files, its database and its locks there, never to the host.
# - There, /usr/lib/systemd/system is the manager's $XDG_DATA_HOME/systemd/user and
#   /etc/systemd/system its $XDG_CONFIG_HOME/systemd/user: the units a package installs, the
#   enablement links deb-systemd-helper makes, and drop-ins, land where a user manager
#   reads them. /run/systemd/system exists there (the manager's own tmpfs), so scripts that
#   test for a running systemd find one. A /usr/sbin/policy-rc.d that forbids starting
#   services (container images ship one) is removed there, as no server has one.
# - Commands run there with STATE_DIR/bridge/bin first in PATH: `systemctl`, `systemd-run`
#   and `journalctl`, which the scripts (and apprun) call for the system manager, go to the
#   user manager (`--user`; a `--system` word is dropped) — except offline `systemctl
#   --root=…` calls (deb-systemd-helper's preset), which work on the unit files as they are.
# What a test must add itself: a drop-in for settings a root user manager cannot honour
# (DynamicUser=: no dynamic users; ProtectHome=yes: hides /run/user, where its notify socket is).
set -euo pipefail
cmd=${1:-}; pid=${2:-}; dir=${3:-}
[ -n "$cmd" ] && [ -n "$pid" ] && [ -n "$dir" ] ||
  { echo "usage: $0 setup|run MANAGER_PID STATE_DIR [CMD…]" >&2; exit 2; }
shift 3
bridge="$dir/bridge"
case "$cmd" in
setup)
  mkdir -p "$bridge/bin" "$bridge/layers" "$dir/data/systemd/user" "$dir/config/systemd/user"
  for tool in systemctl systemd-run journalctl; do
    cat >"$bridge/bin/$tool" <<EOF
#!/bin/sh
# dpkg-bridge.sh: $tool of the system manager is the private user manager's here.
for a in "\$@"; do case \$a in --root=*) exec /usr/bin/$tool "\$@" ;; esac; done
for a in "\$@"; do shift; [ "\$a" = --system ] || set -- "\$@" "\$a"; done
exec /usr/bin/$tool --user "\$@"
EOF
    chmod 755 "$bridge/bin/$tool"
  done
  nsenter -t "$pid" -m -- /bin/sh -c '
    set -e
    layers=$1; data=$2; config=$3
    mount -t tmpfs -o mode=755 tmpfs "$layers"
    for d in usr etc var; do
      mkdir "$layers/$d.up" "$layers/$d.work"
      mount -t overlay overlay -o "lowerdir=/$d,upperdir=$layers/$d.up,workdir=$layers/$d.work" "/$d"
    done
    mkdir -p /usr/lib/systemd/system /etc/systemd/system
    mount --bind "$data" /usr/lib/systemd/system
    mount --bind "$config" /etc/systemd/system
    rm -f /usr/sbin/policy-rc.d
    [ -d /run/systemd/system ]
  ' sh "$bridge/layers" "$dir/data/systemd/user" "$dir/config/systemd/user"
  ;;
run)
  [ $# -gt 0 ] || { echo "run needs a command" >&2; exit 2; }
  # The XDG_* directories user-manager.sh gave the manager: `systemctl --user` finds unit
  # files through them too.
  exec nsenter -t "$pid" -m -- env PATH="$bridge/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    XDG_CONFIG_HOME="$dir/config" XDG_DATA_HOME="$dir/data" XDG_CACHE_HOME="$dir/cache" \
    XDG_STATE_HOME="$dir/state" "$@"
  ;;
*) echo "usage: $0 setup|run MANAGER_PID STATE_DIR [CMD…]" >&2; exit 2 ;;
esac
