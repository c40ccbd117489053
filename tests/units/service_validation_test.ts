/**
 * @module
 * Every way units/ refuses a service-side option — command line, environment, identity,
 * limits, timing, sandbox: each must throw UnitOptionError (an AppRunError with code
 * ERR_UNIT_OPTION) naming the option and the reason. Also the accepted edge values.
 */
import assert from "node:assert/strict";
import { assertUnitError, EXEC, service, TCP } from "./_util.ts";

// [what, call, option named, reason]
const cases: [string, () => unknown, string, RegExp][] = [
  // the command line and environment
  ["no execStart", () => service({ execStart: [] }), "execStart", /non-empty argv/],
  ["relative binary", () => service({ execStart: ["apprun"] }), "execStart[0]", /absolute/],
  [
    "newline in an argument",
    () => service({ execStart: [...EXEC, "a\nb"] }),
    "execStart[3]",
    /control character \(0x0a\)/,
  ],
  [
    "NUL in an argument",
    () => service({ execStart: [...EXEC, "a\0b"] }),
    "execStart[3]",
    /0x00/,
  ],
  [
    "relative workingDirectory",
    () => service({ workingDirectory: "srv" }),
    "workingDirectory",
    /absolute/,
  ],
  [
    "relative environment file",
    () => service({ environmentFiles: ["/etc/a", "-env"] }),
    "environmentFiles[1]",
    /absolute/,
  ],
  ["bad env name", () => service({ environment: { "1X": "a" } }), "environment.1X", /variable/],
  ["env name with =", () => service({ environment: { "A=B": "a" } }), "environment.A=B", /name/],
  [
    "newline in env value",
    () => service({ environment: { A: "x\ny" } }),
    "environment.A",
    /0x0a/,
  ],
  [
    "carriage return in env value",
    () => service({ environment: { A: "x\ry" } }),
    "environment.A",
    /0x0d/,
  ],
  [
    "env value not a string",
    () => service({ environment: { A: 1 as unknown as string } }),
    "environment.A",
    /string/,
  ],
  [
    "protocol variable",
    () => service({ environment: { LISTEN_FDS: "3" } }),
    "environment.LISTEN_FDS",
    /set by systemd/,
  ],
  [
    "NOTIFY_SOCKET",
    () => service({ environment: { NOTIFY_SOCKET: "/x" } }),
    "environment.NOTIFY_SOCKET",
    /set by systemd/,
  ],
  [
    "DENO_V8_FLAGS with jitless",
    () => service({ jitless: true, environment: { DENO_V8_FLAGS: "--x" } }),
    "environment.DENO_V8_FLAGS",
    /jitless option/,
  ],
  [
    "DENO_DIR with denoCache",
    () => service({ environment: { DENO_DIR: "/x" } }),
    "environment.DENO_DIR",
    /denoCache option/,
  ],
  [
    "environment not an object",
    () => service({ environment: ["A=1"] as unknown as Record<string, string> }),
    "environment",
    /object/,
  ],
  // sockets, identity, capabilities
  ["sockets entry", () => service({ sockets: ["app.service"] }), "sockets[0]", /\.socket unit/],
  ["sockets bad name", () => service({ sockets: ["a b.socket"] }), "sockets[0]", /unit name/],
  ["user in a user unit", () => service({ scope: "user", user: "app" }), "user", /own user/],
  ["group in a user unit", () => service({ scope: "user", group: "app" }), "group", /own user/],
  ["user root", () => service({ user: "root" }), "user", /root/],
  ["bad user", () => service({ user: "App User" }), "user", /not a user\/group name/],
  ["group without user", () => service({ group: "app" }), "group", /needs user/],
  [
    "own port 443 in a user unit",
    () => service({ scope: "user", ownListeners: [{ kind: "tcp", port: 443 }] }),
    "ownListeners[0].port",
    /socket unit bind ports below 1024/,
  ],
  [
    "bad own listener",
    () => service({ ownListeners: [{ kind: "tcp", port: -1 }] }),
    "ownListeners[0].port",
    /range/,
  ],
  // limits and timing
  ["fdStoreMax 0", () => service({ fdStoreMax: 0 }), "fdStoreMax", /out of range 1–1024/],
  [
    "fdStoreMax below bundle + own listeners",
    () => service({ fdStoreMax: 2, ownListeners: [TCP, { ...TCP, port: 8081 }] }),
    "fdStoreMax",
    /at least 3/,
  ],
  ["limitNoFile 100", () => service({ limitNoFile: 100 }), "limitNoFile", /1024–1048576/],
  [
    "limitNoFile under connections",
    () => service({ limitNoFile: 20000, maxConnections: 19800 }),
    "limitNoFile",
    /in flight.*at least 20056/,
  ],
  ["maxConnections 0", () => service({ maxConnections: 0 }), "maxConnections", /range/],
  ["drainTimeout 0", () => service({ drainTimeout: 0 }), "drainTimeout", /greater than 0/],
  ["drainTimeout NaN", () => service({ drainTimeout: NaN }), "drainTimeout", /number of seconds/],
  [
    "drainTimeout in microseconds",
    () => service({ drainTimeout: 1.0005 }),
    "drainTimeout",
    /finer than a millisecond/,
  ],
  ["drainTimeout two years", () => service({ drainTimeout: 6e7 }), "drainTimeout", /a year/],
  [
    "timeoutStop under drain",
    () => service({ drainTimeout: 30, timeoutStop: 30 }),
    "timeoutStop",
    /SIGKILL.*at least 35s/,
  ],
  [
    "timeoutStop default follows drain",
    () => service({ drainTimeout: 30, timeoutStop: 34.999 }),
    "timeoutStop",
    /at least 35s/,
  ],
  ["negative restartDelay", () => service({ restartDelay: -1 }), "restartDelay", /0 or more/],
  [
    "negative startLimitInterval",
    () => service({ startLimitInterval: -5 }),
    "startLimitInterval",
    /0 or more/,
  ],
  [
    "systemd's default start limit",
    () => service({ startLimitInterval: 10, startLimitBurst: 5 }),
    "startLimitBurst",
    /6th back-to-back upgrade.*at least 20/,
  ],
  ["startLimitBurst 0", () => service({ startLimitBurst: 0 }), "startLimitBurst", /range/],
  ["watchdog 0.5s", () => service({ watchdog: 0.5 }), "watchdog", /1s or more/],
  ["watchdog 0", () => service({ watchdog: 0 }), "watchdog", /greater than 0/],
  // the sandbox
  ["bad protectHome", () => service({ protectHome: "no" as "yes" }), "protectHome", /"yes"/],
  [
    "ProtectHome=yes in a user unit",
    () => service({ scope: "user", protectHome: "yes" }),
    "protectHome",
    /NOTIFY_SOCKET/,
  ],
  [
    "server under /home with ProtectHome=yes",
    () => service({ execStart: ["/usr/bin/apprun", "serve", "/home/me/app.ts"] }),
    "execStart[2]",
    /home dir.*protectHome: "read-only"/,
  ],
  [
    "working dir under /root",
    () => service({ workingDirectory: "/root/app", protectHome: "tmpfs" }),
    "workingDirectory",
    /ProtectHome=tmpfs hides/,
  ],
  [
    "env file under /run/user",
    () => service({ environmentFiles: ["-/run/user/1000/app.env"] }),
    "environmentFiles[0]",
    /home dir/,
  ],
  [
    "relative readWritePaths",
    () => service({ readWritePaths: ["var/lib/app"] }),
    "readWritePaths[0]",
    /absolute/,
  ],
];

for (const [what, call, option, why] of cases) {
  Deno.test(`units/ refuses ${what} (${option})`, () => assertUnitError(call, option, why));
}

Deno.test("units/ accepts the service edge values its checks allow, and writes them", () => {
  const edges: [() => string, string[]][] = [
    [
      () => service({ fdStoreMax: 3, ownListeners: [TCP, { ...TCP, port: 8081 }] }),
      ["FileDescriptorStoreMax=3"],
    ],
    [() => service({ limitNoFile: 20000, maxConnections: 20000 - 256 }), ["LimitNOFILE=20000"]],
    [() => service({ drainTimeout: 30, timeoutStop: 35 }), ["TimeoutStopSec=35s"]],
    [
      () => service({ startLimitInterval: 0, startLimitBurst: 1 }),
      ["StartLimitIntervalSec=0s", "StartLimitBurst=1"],
    ],
    [() => service({ startLimitBurst: 20 }), ["StartLimitBurst=20"]],
    [
      () => service({ restartDelay: 0, watchdog: 1, drainTimeout: 0.001 }),
      ["RestartSec=0s", "WatchdogSec=1s", "TimeoutStopSec=20001ms"],
    ],
    [
      () => service({ environment: { _: "", a_B9: "\t" } }),
      ['Environment="_="', 'Environment="a_B9=\\t"'],
    ],
    [
      () =>
        service({ execStart: ["/usr/bin/apprun", "/home/me/app.ts"], protectHome: "read-only" }),
      ["ExecStart=/usr/bin/apprun /home/me/app.ts", "ProtectHome=read-only"],
    ],
    [
      () =>
        service({ user: "www-data", group: "www-data", ownListeners: [{ kind: "tcp", port: 80 }] }),
      ["User=www-data", "Group=www-data", "AmbientCapabilities=CAP_NET_BIND_SERVICE"],
    ],
  ];
  for (const [render, lines] of edges) {
    const text = render().split("\n");
    for (const line of lines) assert.ok(text.includes(line), `${line} in:\n${text.join("\n")}`);
  }
});

Deno.test("renderServiceUnit() with no sockets is wanted by its target instead", () => {
  const system = service({ sockets: [], ownListeners: [TCP] });
  assert.doesNotMatch(system, /^(Sockets|Requires|Also)=/m);
  assert.match(system, /^WantedBy=multi-user\.target$/m);
  const user = service({ scope: "user", sockets: [] });
  assert.match(user, /^WantedBy=default\.target$/m);
});
