/**
 * @module
 * The sandbox of apprun's service unit: which systemd.exec(5) settings it renders, per
 * manager (system or user), and why each one is safe for a Deno server that hands live
 * connections to its successor. Renders lines; validates nothing (service.ts does).
 *
 * Findings behind the choices, measured on systemd 252 with the pinned Deno (2.9.6, V8 15.0)
 * in the private manager of tests/_systemd.ts; tests/units/run_test.ts and
 * tests/units/findings_test.ts re-check them:
 *
 * - MemoryDenyWriteExecute=yes kills Deno at start: V8's JIT maps W+X code pages, the
 *   seccomp filter fails mprotect(PROT_EXEC) with EPERM, V8 aborts ("Fatal error …
 *   Check failed: 12 == (*__errno_location ())"). With `DENO_V8_FLAGS=--jitless` it runs,
 *   at a cost (same machine, no sandbox vs sandbox + jitless): a hot JS loop 3.7× slower,
 *   JSON.stringify ~1.5×, TextEncoder ~1.5×, each FFI call +60% (Deno's FFI "turbocall"
 *   trampolines are JIT code too: "Failed to compile FFI turbocall: Operation not
 *   permitted", once per symbol, and calls fall back to the slow path); start-up the same.
 *   apprun's HTTP engine lives on FFI calls and hot JS, so it is opt-in (`jitless: true`).
 * - SystemCallFilter=@system-service: V8 calls pkey_alloc (memory protection keys, its own
 *   W^X guard of JIT code), which is in @pkey, not @system-service; with the default kill
 *   action Deno dies of SIGSYS before running a line. With SystemCallErrorNumber=EPERM it
 *   runs without @pkey but V8 loses that guard, so the filter allows @pkey. Everything else
 *   apprun needs — FFI (dlopen, mmap), epoll, eventfd, memfd_create + F_ADD_SEALS,
 *   socketpair, sendmsg/recvmsg with SCM_RIGHTS, pidfd_open, waitid, posix_spawn
 *   (clone3/vfork + execve), prlimit64 for RLIMIT_NOFILE — is in @system-service, and
 *   nothing in @privileged or @resources was called (SystemCallLog= over a full probe), so
 *   both are denied. SystemCallErrorNumber=EPERM makes a call outside the list fail instead
 *   of killing the process: a newer Deno trying a new syscall should log an error, not drop
 *   every connection in the middle of an upgrade. The filter costs ~25–60 ns per syscall
 *   (getpid through FFI: 177 ns → 200–236 ns).
 * - ProtectProc=invisible and ProcSubset=pid are fine: Deno reads only /proc/self/*.
 * - A writable DENO_DIR matters: without one Deno re-transpiles every module at each start
 *   (0.04 s → 0.21 s for runtime/sys alone), which lands in the handoff pause. The service
 *   gets CacheDirectory= and DENO_DIR=%C/<name>.
 *
 * User managers (`systemctl --user`) differ:
 * - No User=/Group=/DynamicUser=: a user manager runs everything as its user. A root user
 *   manager accepts them, but the service then cannot reach $XDG_RUNTIME_DIR/systemd/notify
 *   (0700) and never gets READY=1 through (EACCES); an unprivileged one fails the unit
 *   (216/GROUP, 217/USER).
 * - ProtectHome=read-only, not yes or tmpfs: both hide /run/user, where the user manager's
 *   NOTIFY_SOCKET lives, so a Type=notify service can never say READY=1 (sendmsg fails
 *   with EACCES under yes, ENOENT under tmpfs).
 * - No RemoveIPC=: in a user unit it would remove every SysV/POSIX IPC object of the user
 *   when the service stops, not only the service's. (Likewise a system service with a
 *   shared User= gets none; DynamicUser= implies it anyway.)
 * - No AmbientCapabilities=: a user manager has no capabilities to give.
 * - PrivateUsers=yes, explicitly: an unprivileged user manager (tested as `nobody`) fails
 *   CapabilityBoundingSet=, PrivateDevices=, ProtectKernelModules=, ProtectKernelLogs= and
 *   ProtectClock= with 218/CAPABILITIES unless the service has its own user namespace, and
 *   silently skips the mount-namespace settings (ProtectSystem=, PrivateTmp=, …) without
 *   one. (In this sandbox an unprivileged manager then failed the mount settings with
 *   226/NAMESPACE; that part is unverified elsewhere.)
 * `systemd-analyze verify --user` rejects none of these; only running them tells.
 */

/** What the sandbox depends on. */
export interface HardeningInput {
  scope: "system" | "user";
  /** System scope: run as this user (and group); absent means DynamicUser=yes. */
  user?: string;
  group?: string;
  /** apprun binds a port below 1024 itself (not through a socket unit). System scope only. */
  needsBindCapability: boolean;
  /** Deno runs with `--jitless`, so MemoryDenyWriteExecute=yes is possible. */
  isJitless: boolean;
  protectHome: "yes" | "read-only" | "tmpfs";
  readWritePaths: readonly string[];
  bindReadOnlyPaths: readonly string[];
}

/** The `[Service]` lines of the sandbox, in a stable order, with a comment per group. */
export function hardeningLines(input: HardeningInput): string[] {
  const isSystem = input.scope === "system";
  const lines: string[] = [];
  if (isSystem) {
    lines.push("# Identity: a throwaway uid/gid unless a user is given.");
    if (input.user) {
      lines.push(`User=${input.user}`);
      if (input.group) lines.push(`Group=${input.group}`);
    } else {
      lines.push("DynamicUser=yes");
    }
  }
  lines.push(
    "# Sandbox (systemd.exec(5)); see units/hardening.ts for why each one fits apprun.",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    `ProtectHome=${input.protectHome}`,
    ...input.readWritePaths.map((p) => `ReadWritePaths=${p.replaceAll("%", "%%")}`),
    "PrivateTmp=yes",
    ...input.bindReadOnlyPaths.map((p) => `BindReadOnlyPaths=${p.replaceAll("%", "%%")}`),
    "PrivateDevices=yes",
    "PrivateIPC=yes",
    "PrivateMounts=yes",
  );
  // A user namespace would make CAP_NET_BIND_SERVICE useless against the host's network.
  if (!input.needsBindCapability) lines.push("PrivateUsers=yes");
  lines.push(
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
  );
  // RemoveIPC= wipes every IPC object of the service's user at stop: right for a dynamic
  // user, wrong for a shared one (www-data) or a user manager's own user.
  if (isSystem && !input.user) lines.push("RemoveIPC=yes");
  if (isSystem) lines.push("KeyringMode=private");
  lines.push(
    "DevicePolicy=closed",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service @pkey",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
  );
  if (input.needsBindCapability) {
    lines.push(
      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
      "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    );
  } else {
    lines.push("CapabilityBoundingSet=");
    if (isSystem) lines.push("AmbientCapabilities=");
  }
  lines.push("UMask=0077");
  if (input.isJitless) lines.push("MemoryDenyWriteExecute=yes");
  return lines;
}
