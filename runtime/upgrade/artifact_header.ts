/**
 * @module
 * The `/bin/sh` script at the head of an artifact (docs/design.md, "Shipping"). The file is
 * this script, a here-document holding the payload (gzip'd tar members: Deno's binary, then
 * apprun and the app), and the here-document's end line, so `sh -n` reads it as one script.
 *
 * At run time the script:
 * 1. answers `version` from the line below, touching nothing;
 * 2. finds the unpacked tree in `BASE/TREE`, where BASE is `$APPRUN_UNPACK_DIR`, else the
 *    service's `$CACHE_DIRECTORY`, else `$RUNTIME_DIRECTORY` (systemd sets both for
 *    CacheDirectory=/RuntimeDirectory=, writable under any sandbox), else the user's cache,
 *    else a private directory under /tmp; TREE is the SHA-256 of the tree's SHA256SUMS;
 * 3. if it is not there (owned by us and marked `ok`), unpacks into a fresh temp directory
 *    beside it, checks every file with `sha256sum -c` and SHA256SUMS against TREE, marks it
 *    `ok` and renames it into place — rename(2) makes it appear whole; of two starts that
 *    race, one rename wins and the other uses the winner's tree; then removes trees not used
 *    lately (keeps four);
 * 4. execs this tree's `bin/apprun` as a user would: `serve`/`check` with the handler.
 * Later starts cost a few stat(2)s and one exec before `deno run`. Renders text only.
 */
import { shellQuote } from "./exec.ts";

/** What the header needs to know. */
export interface HeaderOptions {
  name: string;
  /** The line `NAME version` prints. */
  versionLine: string;
  /** Hex SHA-256 of the tree's SHA256SUMS: the unpacked directory's name. */
  tree: string;
  /** apprun's root and the handler, relative to the tree ("" for the tree itself). */
  rootRel: string;
  handlerRel: string;
  /** `uname -m` of the machines it runs on. */
  arch: string;
  payloadLength: number;
}

/** How many unpacked trees stay besides the one starting (for rollbacks and restarts). */
const KEEP_TREES = 3;
const WIDTH = 12;

/** The end line of the payload's here-document. */
export function payloadDelimiter(tree: string): string {
  return `APPRUN_PAYLOAD_${tree.slice(0, 24)}`;
}

/** The header's text; the payload starts right after it. Its length does not depend on it. */
export function renderHeader(opts: HeaderOptions): string {
  const draft = render(opts, 0);
  return render(opts, new TextEncoder().encode(draft).length + 1);
}

function render(opts: HeaderOptions, offset: number): string {
  const q = shellQuote;
  const pad = (n: number) => String(n).padStart(WIDTH, "0");
  return `#!/bin/sh
# ${opts.name}: an apprun artifact (runtime/upgrade/artifact_header.ts). This script, then the
# payload (Deno, apprun and the app as gzip'd tar). The first run unpacks it into a directory
# named by its hash, checks every file, and later runs reuse it. Needs sh, tar, gzip and
# coreutils. ${opts.name} version | check | serve [options] | install | upgrade NEW | <apprun command>
set -eu
name=${q(opts.name)}
version_line=${q(opts.versionLine)}
tree=${opts.tree}
root=${q(opts.rootRel || ".")}
handler=${q(opts.handlerRel)}
arch=${q(opts.arch)}
payload_offset=${pad(offset)}
payload_length=${pad(opts.payloadLength)}
case "\${1-}" in version | --version)
  printf '%s\\n' "$version_line"
  exit 0
  ;;
esac
fail() {
  echo "$name: $*" >&2
  exit 1
}
self=$0
case $self in /*) ;; *) self=$(pwd)/$self ;; esac
[ "$(uname -m)" = "$arch" ] || fail "built for $arch Linux; this machine is $(uname -m)"
if [ -n "\${APPRUN_UNPACK_DIR-}" ]; then base=$APPRUN_UNPACK_DIR
elif [ -n "\${CACHE_DIRECTORY-}" ]; then base=\${CACHE_DIRECTORY%%:*}/apprun
elif [ -n "\${RUNTIME_DIRECTORY-}" ]; then base=\${RUNTIME_DIRECTORY%%:*}/apprun
elif [ -n "\${XDG_CACHE_HOME-}" ]; then base=$XDG_CACHE_HOME/apprun/unpacked
elif [ -n "\${HOME-}" ] && [ "$HOME" != / ]; then base=$HOME/.cache/apprun/unpacked
else base=\${TMPDIR:-/tmp}/apprun-$(id -u)/unpacked
fi
dir=$base/$tree
# Ours (a tree another user made or put there is never run), and marked whole.
is_ok() { [ -O "$1" ] && [ -f "$1/.apprun/ok" ] && read -r ok <"$1/.apprun/ok" && [ "$ok" = "$tree" ]; }
unpack() {
  umask 077
  mkdir -p "$base" 2>/dev/null && [ -w "$base" ] ||
    fail "cannot unpack into $base: give the service CacheDirectory= or RuntimeDirectory=, or set APPRUN_UNPACK_DIR"
  [ -O "$base" ] || fail "$base is not owned by uid $(id -u): not unpacking there"
  # Named by our pid: a start that finds it while we live leaves it alone (below).
  tmp=$(mktemp -d "$base/.unpack-$$-XXXXXXXX") || fail "cannot write to $base"
  # -m: the archive's mtimes (all 0) are not restored, not even on $tmp itself.
  if ! tail -c +"$payload_offset" "$self" | head -c "$payload_length" |
    tar -x -z -i -m -f - -C "$tmp" --no-same-owner 2>"$tmp.log"; then
    rm -rf "$tmp"
    fail "cannot unpack $self into $base: $(tail -n 1 "$tmp.log"; rm -f "$tmp.log")"
  fi
  rm -f "$tmp.log"
  sum=$(sha256sum <"$tmp/.apprun/SHA256SUMS" 2>/dev/null) || sum=none
  if [ "\${sum%% *}" != "$tree" ] || ! (cd "$tmp" && sha256sum --quiet --strict -c .apprun/SHA256SUMS) >"$tmp.log" 2>&1; then
    bad=$(head -n 1 "$tmp.log")
    rm -rf "$tmp" "$tmp.log"
    fail "$self is damaged: its unpacked files do not match their hashes ($bad)"
  fi
  rm -f "$tmp.log"
  printf '%s\\n' "$tree" >"$tmp/.apprun/ok"
  if ! mv -T "$tmp" "$dir" 2>/dev/null; then
    if is_ok "$dir"; then rm -rf "$tmp"
    else
      mv -T "$dir" "$base/.broken-$$" && mv -T "$tmp" "$dir" || fail "cannot rename $tmp to $dir"
      rm -rf "$base/.broken-$$"
    fi
  fi
  # Trees not used lately go (the newest ${KEEP_TREES} others stay, for rollbacks), and what
  # unpacks that died left.
  ls -1t "$base"/*/.apprun/ok 2>/dev/null | tail -n +${KEEP_TREES + 2} | while read -r f; do
    old=\${f%/.apprun/ok}
    [ "$old" = "$dir" ] || { mv -T "$old" "$base/.old-$$" 2>/dev/null && rm -rf "$base/.old-$$"; } || :
  done
  for t in "$base"/.unpack-*; do
    p=\${t##*/.unpack-}
    p=\${p%%-*}
    case $p in '' | *[!0-9]*) continue ;; esac
    kill -0 "$p" 2>/dev/null || rm -rf "$t"
  done
}
if is_ok "$dir"; then touch -c "$dir/.apprun/ok" 2>/dev/null || :
else (unpack) || exit 1
fi
export APPRUN_DENO="$dir/$root/node_modules/deno/deno" APPRUN_ARTIFACT="$self" APPRUN_BUILD="$dir/.apprun/build.json"
[ -n "\${DENO_DIR-}" ] || export DENO_DIR="$base/deno"
apprun=$dir/$root/bin/apprun
case "\${1-}" in
serve)
  shift
  # Under systemd or apprun's supervisor: serve. Started by hand: a supervisor whose worker
  # is this file, so that a restart after an upgrade runs the file then installed here.
  if [ -n "\${NOTIFY_SOCKET-}" ] || [ -n "\${LISTEN_FDS-}" ]; then exec "$apprun" serve "$dir/$handler" "$@"; fi
  for a in "$@"; do [ "$a" != --no-supervisor ] || exec "$apprun" serve "$dir/$handler" "$@"; done
  exec "$apprun" serve --bin "$self" --name "$name" "$@"
  ;;
check)
  shift
  exec "$apprun" check "$dir/$handler" "$@"
  ;;
esac
exec "$apprun" "$@"
: <<'${payloadDelimiter(opts.tree)}'
`;
}
