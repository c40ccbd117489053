/**
 * @module
 * Renders apprun's `.service` unit: Type=notify with the fdstore sized for the handoff
 * bundle, limits and timeouts checked against apprun's own (connections, drain), restart
 * policy that survives back-to-back upgrades, and the sandbox from `hardening.ts`. Pure:
 * options in, unit text out; every bad option is a {@linkcode UnitOptionError}.
 *
 * Two ways to the next version (docs/design.md, "Warm reload"), never restarting the socket
 * (it holds the listeners):
 * - `systemctl reload NAME.service` (warm): `ExecReload=` runs `apprun takeover -- ExecStart…`
 *   as the control process; the next process loads while the running one serves on, takes
 *   every connection over from it through `RuntimeDirectory=` (a private socket there), and
 *   becomes the main process by the helper's `MAINPID=` — hence `NotifyAccess=exec`, the
 *   narrowest setting that accepts it (main and control processes only); then the old one
 *   exits. A new version that does not load fails the reload job and changes nothing.
 * - `systemctl restart NAME.service` (cold): systemd sends SIGTERM to the main process only
 *   (KillMode=mixed), apprun drains, puts the handoff bundle in the fdstore, waits for
 *   BARRIER=1 and exits; a pristine process gets the listeners and the bundle. What a reload
 *   keeps from the running process's start — the unit's environment, limits and sandbox, as
 *   systemd applied them to the control process — a restart renews.
 */
import { formatSeconds, quoteEnvironment, quoteExecWord } from "./_syntax.ts";
import {
  checkAbsolutePath,
  checkAccountName,
  checkEnvName,
  checkInteger,
  checkSeconds,
  checkText,
  checkUnitBaseName,
  fail,
} from "./_validate.ts";
import { hardeningLines } from "./hardening.ts";
import { DEFAULTS } from "../runtime/defaults.ts";
import { checkListener, isPrivilegedPort, type Listener } from "./listeners.ts";

/** Options for {@linkcode renderServiceUnit}. Durations are in seconds. */
export interface ServiceUnitOptions {
  /** The app's name: this is `${name}.service`. */
  name: string;
  /** Which manager runs it; `"user"` drops what a user manager cannot do. Default system. */
  scope?: "system" | "user";
  description?: string;
  /** argv of the server; `execStart[0]` is an absolute path. Quoted for systemd here. */
  execStart: readonly string[];
  workingDirectory?: string;
  environment?: Readonly<Record<string, string>>;
  /** `EnvironmentFile=` paths; a leading `-` means "ignore if missing". */
  environmentFiles?: readonly string[];
  /** Socket units that pass listeners (`Sockets=`). Default `[`${name}.socket`]`. */
  sockets?: readonly string[];
  /** Listeners apprun opens itself (no socket unit): they go into the fdstore on handoff. */
  ownListeners?: readonly Listener[];
  /** System scope: run as this user/group instead of DynamicUser=yes. Never root. */
  user?: string;
  group?: string;
  /** `FileDescriptorStoreMax=`: the bundle + own listeners + headroom. Default `DEFAULTS`. */
  fdStoreMax?: number;
  /** `LimitNOFILE=` (soft = hard). Default `DEFAULTS.limitNoFile`. */
  limitNoFile?: number;
  /** apprun's connection limit: LimitNOFILE must exceed it plus headroom. */
  maxConnections?: number;
  /** apprun's drain timeout in seconds (`--drain-timeout`). Default `DEFAULTS`. */
  drainTimeout?: number;
  /**
   * apprun's event loops (`serve --parallel N`, appended to `ExecStart=`): N loops in the one
   * main process. Default: none given (one loop).
   */
  parallel?: number;
  /** `TimeoutStopSec=`: drain + the handoff itself. Default drain + 20. */
  timeoutStop?: number;
  /** `TimeoutStartSec=`: how long a start, and each reload, may take. Default systemd's (90 s). */
  timeoutStart?: number;
  /** `RestartSec=` for automatic restarts after a failure. Default 1. */
  restartDelay?: number;
  /** `StartLimitIntervalSec=` (0 turns the limit off). Default 60. */
  startLimitInterval?: number;
  /** `StartLimitBurst=`: starts allowed per interval, upgrades included. Default 30. */
  startLimitBurst?: number;
  /** `WatchdogSec=`; apprun then sends WATCHDOG=1 at half that period. */
  watchdog?: number;
  /**
   * Run V8 without its JIT (`DENO_V8_FLAGS=--jitless`) and set MemoryDenyWriteExecute=yes.
   * Off by default: MemoryDenyWriteExecute=yes alone kills Deno at start (V8's JIT needs
   * W+X pages: "Check failed: 12 == (*__errno_location ())"), and jitless costs hot JS
   * ~3.7×, JSON/TextEncoder ~1.5×, each FFI call +60% (measured; see hardening.ts).
   */
  jitless?: boolean;
  /** CacheDirectory= and DENO_DIR in it, so Deno need not re-transpile at every start. */
  denoCache?: boolean;
  /** Default "yes" (system), "read-only" (user; the only value a user service can use). */
  protectHome?: "yes" | "read-only" | "tmpfs";
  /** Paths the service may write (everything else is read-only: ProtectSystem=strict). */
  readWritePaths?: readonly string[];
  /**
   * Paths the service must see although PrivateTmp= hides them (a checkout or handler under
   * /tmp or /var/tmp): bound read-only into its namespace (`BindReadOnlyPaths=`).
   */
  bindReadOnlyPaths?: readonly string[];
}

/** fds a server needs besides connections: Deno's own, listeners, bundle, memfd, files. */
export const FD_HEADROOM = 256;
/** Time the handoff needs after the drain (snapshot, sendmsg of the fds, BARRIER=1). */
export const HANDOFF_MARGIN = 5;
/** Back-to-back upgrades that must fit in any one minute without hitting the start limit. */
export const MIN_RESTARTS_PER_MINUTE = 20;

// Variables systemd sets for the service (sd_listen_fds(3), sd_notify(3), sd_watchdog_enabled(3)).
const PROTOCOL_VARIABLES = new Set([
  "LISTEN_PID",
  "LISTEN_FDS",
  "LISTEN_FDNAMES",
  "NOTIFY_SOCKET",
  "WATCHDOG_PID",
  "WATCHDOG_USEC",
]);
const HOME_DIRS = /^\/(home|root|run\/user)(\/|$)/;

/** Renders `${name}.service`. Throws {@linkcode UnitOptionError} on the first bad option. */
export function renderServiceUnit(opts: ServiceUnitOptions): string {
  const name = checkUnitBaseName(opts.name, "name");
  const scope = opts.scope ?? "system";
  if (scope !== "system" && scope !== "user") {
    fail("scope", `must be "system" or "user", got ${JSON.stringify(scope)}`);
  }
  const isSystem = scope === "system";
  const description = checkText(opts.description ?? `apprun ${name}`, "description");

  const execStart = checkExecStart(opts.execStart);
  if (opts.parallel !== undefined) {
    // Before the app's own arguments (after `--`), where `serve` reads its options.
    const n = checkInteger(opts.parallel, "parallel", 1, DEFAULTS.maxLoops);
    const dashes = execStart.indexOf("--");
    execStart.splice(dashes < 0 ? execStart.length : dashes, 0, "--parallel", String(n));
  }
  const workingDirectory = opts.workingDirectory === undefined
    ? undefined
    : checkAbsolutePath(opts.workingDirectory, "workingDirectory");
  const environmentFiles = (opts.environmentFiles ?? []).map((f, i) => {
    const isOptional = typeof f === "string" && f.startsWith("-");
    const path = checkAbsolutePath(isOptional ? f.slice(1) : f, `environmentFiles[${i}]`);
    return isOptional ? `-${path}` : path;
  });
  const environment = checkEnvironment(opts.environment ?? {});
  const sockets = (opts.sockets ?? [`${name}.socket`]).map((s, i) => {
    const option = `sockets[${i}]`;
    if (typeof s !== "string" || !s.endsWith(".socket")) fail(option, "must name a .socket unit");
    return `${checkUnitBaseName(s.slice(0, -".socket".length), option)}.socket`;
  });
  const ownListeners = (opts.ownListeners ?? []).map((l, i) =>
    checkListener(l, `ownListeners[${i}]`)
  );

  if (!isSystem && (opts.user !== undefined || opts.group !== undefined)) {
    fail(
      opts.user !== undefined ? "user" : "group",
      "a user manager runs services as its own user",
    );
  }
  const user = opts.user === undefined ? undefined : checkAccountName(opts.user, "user");
  const group = opts.group === undefined ? undefined : checkAccountName(opts.group, "group");
  if (group !== undefined && user === undefined) {
    fail("group", "needs user (DynamicUser= picks both)");
  }

  const privileged = ownListeners.findIndex(isPrivilegedPort);
  if (privileged >= 0 && !isSystem) {
    fail(
      `ownListeners[${privileged}].port`,
      "a user service cannot get CAP_NET_BIND_SERVICE: let a socket unit bind ports below 1024",
    );
  }

  const fdStoreMax = checkInteger(opts.fdStoreMax ?? DEFAULTS.fdStoreMax, "fdStoreMax", 1, 1024);
  if (fdStoreMax < 1 + ownListeners.length) {
    fail(
      "fdStoreMax",
      `${fdStoreMax} cannot hold the handoff bundle and ${ownListeners.length} own ` +
        `listener(s): at least ${1 + ownListeners.length}`,
    );
  }
  const limitNoFile = checkInteger(
    opts.limitNoFile ?? DEFAULTS.limitNoFile,
    "limitNoFile",
    1024,
    1048576,
  );
  if (opts.maxConnections !== undefined) {
    const maxConnections = checkInteger(opts.maxConnections, "maxConnections", 1, 1048576);
    if (limitNoFile < maxConnections + FD_HEADROOM) {
      fail(
        "limitNoFile",
        `${limitNoFile} is too low for ${maxConnections} connections: each is an open fd and, ` +
          `during a handoff, an fd in flight too; at least ${maxConnections + FD_HEADROOM}`,
      );
    }
  }

  const drainTimeout = checkSeconds(
    opts.drainTimeout ?? DEFAULTS.drainTimeoutMs / 1000,
    "drainTimeout",
  );
  const timeoutStop = checkSeconds(opts.timeoutStop ?? drainTimeout + 20, "timeoutStop");
  if (timeoutStop < drainTimeout + HANDOFF_MARGIN) {
    fail(
      "timeoutStop",
      `${timeoutStop}s leaves no time for the handoff after a ${drainTimeout}s drain: SIGKILL ` +
        `would cut it short; at least ${drainTimeout + HANDOFF_MARGIN}s`,
    );
  }
  const timeoutStart = opts.timeoutStart === undefined
    ? undefined
    : checkSeconds(opts.timeoutStart, "timeoutStart");
  const restartDelay = checkSeconds(opts.restartDelay ?? 1, "restartDelay", { isPositive: false });
  const startLimitInterval = checkSeconds(
    opts.startLimitInterval ?? DEFAULTS.startLimit.intervalMs / 1000,
    "startLimitInterval",
    {
      isPositive: false,
    },
  );
  const startLimitBurst = checkInteger(
    opts.startLimitBurst ?? DEFAULTS.startLimit.burst,
    "startLimitBurst",
    1,
    100000,
  );
  if (startLimitInterval > 0 && startLimitBurst < MIN_RESTARTS_PER_MINUTE) {
    fail(
      "startLimitBurst",
      `${startLimitBurst} starts per ${startLimitInterval}s stops the ${startLimitBurst + 1}th ` +
        `back-to-back upgrade with start-limit-hit (which fails the socket too); at least ` +
        `${MIN_RESTARTS_PER_MINUTE}`,
    );
  }
  const watchdog = opts.watchdog === undefined
    ? undefined
    : checkSeconds(opts.watchdog, "watchdog");
  if (watchdog !== undefined && watchdog < 1) {
    fail("watchdog", `${watchdog}s: apprun pings at half the period; use 1s or more`);
  }

  const isJitless = opts.jitless ?? false;
  const hasDenoCache = opts.denoCache ?? true;
  for (
    const [key, isSet, why] of [
      ["DENO_V8_FLAGS", isJitless, "jitless"],
      ["DENO_DIR", hasDenoCache, "denoCache"],
    ] as const
  ) {
    if (isSet && key in environment) {
      fail(`environment.${key}`, `is set by the ${why} option; drop one of them`);
    }
  }
  const protectHome = opts.protectHome ?? (isSystem ? "yes" : "read-only");
  if (!["yes", "read-only", "tmpfs"].includes(protectHome)) {
    fail(
      "protectHome",
      `must be "yes", "read-only" or "tmpfs", got ${JSON.stringify(protectHome)}`,
    );
  }
  if (!isSystem && protectHome !== "read-only") {
    fail(
      "protectHome",
      `"${protectHome}" hides /run/user, where a user manager's NOTIFY_SOCKET lives: use "read-only"`,
    );
  }
  if (protectHome !== "read-only") {
    const hidden = [
      ...execStart.map((w, i) => [`execStart[${i}]`, w] as const),
      ["workingDirectory", workingDirectory ?? ""] as const,
      ...environmentFiles.map((f, i) => [`environmentFiles[${i}]`, f.replace(/^-/, "")] as const),
    ].find(([, v]) => HOME_DIRS.test(v));
    if (hidden) {
      fail(
        hidden[0],
        `${hidden[1]} is under a home dir, which ProtectHome=${protectHome} hides: ` +
          `move it, or set protectHome: "read-only"`,
      );
    }
  }
  const readWritePaths = (opts.readWritePaths ?? []).map((p, i) =>
    checkAbsolutePath(p, `readWritePaths[${i}]`)
  );
  const bindReadOnlyPaths = (opts.bindReadOnlyPaths ?? []).map((p, i) =>
    checkAbsolutePath(p, `bindReadOnlyPaths[${i}]`)
  );

  const ctl = isSystem ? "systemctl" : "systemctl --user";
  const unit = [
    `# Generated by apprun (units/service.ts). Next version: \`${ctl} reload ${name}.service\` ` +
    `(warm) or \`${ctl} restart ${name}.service\` (cold, renews the environment and limits); ` +
    `change settings: \`${ctl} edit ${name}.service\`.`,
    "[Unit]",
    `Description=${description.replaceAll("%", "%%")}`,
    ...sockets.flatMap((s) => [`Requires=${s}`, `After=${s}`]),
    "# Every restart counts, upgrades included; hitting the limit fails the socket too.",
    `StartLimitIntervalSec=${formatSeconds(startLimitInterval)}`,
    `StartLimitBurst=${startLimitBurst}`,
    "",
    "[Service]",
    "Type=notify",
    "# The reload helper (a control process) names the next main process: MAINPID=.",
    "NotifyAccess=exec",
    `ExecStart=${execStart.map(quoteExecWord).join(" ")}`,
    "# Warm: the next process takes every connection over while this one serves on.",
    `ExecReload=${[execStart[0], "takeover", "--", ...execStart].map(quoteExecWord).join(" ")}`,
    "# Where the running process offers the takeover (a socket only this service can reach).",
    `RuntimeDirectory=${name}`,
    "RuntimeDirectoryMode=0700",
    ...(workingDirectory ? [`WorkingDirectory=${workingDirectory.replaceAll("%", "%%")}`] : []),
    ...(sockets.length ? [`Sockets=${sockets.join(" ")}`] : []),
    "# The handoff bundle and apprun's own listeners survive restarts here.",
    `FileDescriptorStoreMax=${fdStoreMax}`,
    "# Connections are open fds, and fds in flight in the bundle during a handoff.",
    `LimitNOFILE=${limitNoFile}`,
    "# SIGTERM to the main process only: it drains, hands off and exits by itself.",
    "KillMode=mixed",
    `TimeoutStopSec=${formatSeconds(timeoutStop)}`,
    ...(timeoutStart !== undefined ? [`TimeoutStartSec=${formatSeconds(timeoutStart)}`] : []),
    "Restart=on-failure",
    `RestartSec=${formatSeconds(restartDelay)}`,
    ...(watchdog !== undefined ? [`WatchdogSec=${formatSeconds(watchdog)}`] : []),
    ...(hasDenoCache ? [`CacheDirectory=${name}`] : []),
    ...(hasDenoCache ? [quoteEnvLine("DENO_DIR", `%C/${name}`, true)] : []),
    ...(isJitless ? [quoteEnvLine("DENO_V8_FLAGS", "--jitless")] : []),
    ...Object.entries(environment).map(([k, v]) => quoteEnvLine(k, v)),
    ...environmentFiles.map((f) => `EnvironmentFile=${f.replaceAll("%", "%%")}`),
    ...hardeningLines({
      scope,
      user,
      group,
      needsBindCapability: privileged >= 0,
      isJitless,
      protectHome,
      readWritePaths,
      bindReadOnlyPaths,
    }),
    "",
    "[Install]",
    ...(sockets.length
      ? [`Also=${sockets.join(" ")}`]
      : [`WantedBy=${isSystem ? "multi-user" : "default"}.target`]),
  ];
  return unit.join("\n") + "\n";
}

/** `Environment=` line; `isSpecifier` keeps `%` as a specifier (only for our own values). */
function quoteEnvLine(name: string, value: string, isSpecifier = false): string {
  if (!isSpecifier) return `Environment=${quoteEnvironment(name, value)}`;
  return `Environment="${name}=${value}"`;
}

function checkExecStart(argv: unknown): string[] {
  if (!Array.isArray(argv) || argv.length === 0) {
    fail("execStart", "must be a non-empty argv array");
  }
  checkAbsolutePath(argv[0], "execStart[0]");
  return argv.map((w, i) => checkText(w, `execStart[${i}]`, { isTabAllowed: true }));
}

function checkEnvironment(env: Readonly<Record<string, string>>): Record<string, string> {
  if (env === null || typeof env !== "object" || Array.isArray(env)) {
    fail("environment", "must be an object of name → value");
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const name = checkEnvName(key, `environment.${key}`);
    if (PROTOCOL_VARIABLES.has(name)) {
      fail(`environment.${key}`, "is set by systemd for the socket-activation/notify protocol");
    }
    out[name] = checkText(value, `environment.${key}`, { isTabAllowed: true });
  }
  return out;
}
