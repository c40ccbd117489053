/**
 * @module
 * Every way units/ refuses an option: each case must throw UnitOptionError (an AppRunError
 * with code ERR_UNIT_OPTION) naming the option and the reason. Also the accepted edge values,
 * so that a check cannot silently grow stricter.
 */
import assert from "node:assert/strict";
import {
  type Listener,
  parseListener,
  renderServiceUnit,
  renderSocketUnit,
  renderUnits,
  type ServiceUnitOptions,
  type SocketUnitOptions,
  unitPaths,
} from "../../units/mod.ts";
import { assertUnitError } from "./_util.ts";

const EXEC = ["/usr/local/bin/apprun", "serve", "/srv/app/app.ts"];
const TCP: Listener = { kind: "tcp", host: "127.0.0.1", port: 8080 };
const service = (o: Partial<ServiceUnitOptions>) =>
  renderServiceUnit({ name: "app", execStart: EXEC, ...o } as ServiceUnitOptions);
const socket = (o: Partial<SocketUnitOptions>) =>
  renderSocketUnit({ name: "app", listeners: [TCP], ...o } as SocketUnitOptions);

// [what, call, option named, reason]
const cases: [string, () => unknown, string, RegExp][] = [
  // names and text
  ["empty name", () => service({ name: "" }), "name", /must not be empty/],
  ["name with a slash", () => service({ name: "a/b" }), "name", /not a unit name/],
  ["template name", () => service({ name: "app@1" }), "name", /not a unit name/],
  ["name starting with -", () => socket({ name: "-app" }), "name", /starting with a letter/],
  ["name too long", () => service({ name: "a".repeat(201) }), "name", /at most 200/],
  ["name not a string", () => service({ name: 7 as unknown as string }), "name", /string/],
  ["description newline", () => service({ description: "a\nb" }), "description", /0x0a/],
  ["socket description DEL", () => socket({ description: "a\x7f" }), "description", /0x7f/],
  ["bad scope", () => service({ scope: "global" as "user" }), "scope", /"system" or "user"/],
  ["bad socket scope", () => socket({ scope: "x" as "user" }), "scope", /"system" or "user"/],
  // listeners
  ["no listeners", () => socket({ listeners: [] }), "listeners", /at least one/],
  [
    "port 0",
    () => socket({ listeners: [{ kind: "tcp", port: 0 }] }),
    "listeners[0].port",
    /1–65535/,
  ],
  [
    "port 65536",
    () => socket({ listeners: [TCP, { kind: "tcp", port: 65536 }] }),
    "listeners[1].port",
    /out of range/,
  ],
  [
    "fractional port",
    () => socket({ listeners: [{ kind: "tcp", port: 80.5 }] }),
    "listeners[0].port",
    /integer/,
  ],
  [
    "host name",
    () => socket({ listeners: [{ kind: "tcp", host: "localhost", port: 80 }] }),
    "listeners[0].host",
    /does not resolve names/,
  ],
  [
    "IPv4 octet 256",
    () => socket({ listeners: [{ kind: "tcp", host: "10.0.0.256", port: 80 }] }),
    "listeners[0].host",
    /not an IPv4/,
  ],
  [
    "IPv4 leading zero",
    () => socket({ listeners: [{ kind: "tcp", host: "010.0.0.1", port: 80 }] }),
    "listeners[0].host",
    /not an IPv4/,
  ],
  [
    "bad IPv6",
    () => socket({ listeners: [{ kind: "tcp", host: "1::2::3", port: 80 }] }),
    "listeners[0].host",
    /not an IPv6/,
  ],
  [
    "IPv6 zone",
    () => socket({ listeners: [{ kind: "tcp", host: "fe80::1%eth0", port: 80 }] }),
    "listeners[0].host",
    /zone ids/,
  ],
  [
    "relative unix path",
    () => socket({ listeners: [{ kind: "unix", path: "run/a.sock" }] }),
    "listeners[0].path",
    /not an absolute path/,
  ],
  [
    "unix path with ..",
    () => socket({ listeners: [{ kind: "unix", path: "/run/../a.sock" }] }),
    "listeners[0].path",
    /not normalized/,
  ],
  [
    "unix path with a space",
    () => socket({ listeners: [{ kind: "unix", path: "/run/a b.sock" }] }),
    "listeners[0].path",
    /whitespace/,
  ],
  [
    "unix path over 107 bytes",
    () => socket({ listeners: [{ kind: "unix", path: "/" + "é".repeat(54) }] }),
    "listeners[0].path",
    /109 bytes; a unix socket path holds at most 107/,
  ],
  [
    "unknown kind",
    () => socket({ listeners: [{ kind: "udp", port: 1 } as unknown as Listener] }),
    "listeners[0].kind",
    /"tcp" or "unix"/,
  ],
  [
    "listener not an object",
    () => socket({ listeners: [null as unknown as Listener] }),
    "listeners[0]",
    /listener object/,
  ],
  [
    "same address twice",
    () => socket({ listeners: [TCP, { ...TCP }] }),
    "listeners[1]",
    /same address as listeners\[0\]/,
  ],
  [
    "bare port and [::] on one port",
    () => socket({ listeners: [{ kind: "tcp", port: 80 }, { kind: "tcp", host: "::", port: 80 }] }),
    "listeners[1]",
    /same address/,
  ],
  [
    "same address in two socket units",
    () =>
      renderUnits({
        name: "app",
        execStart: EXEC,
        listeners: [TCP, { ...TCP, name: "admin" }],
      }),
    "listeners[1]",
    /same address as listeners\[0\]/,
  ],
  [
    "listeners not an array",
    () => renderUnits({ name: "app", execStart: EXEC, listeners: "x" as unknown as [] }),
    "listeners",
    /array/,
  ],
  ["bad --listen", () => parseListener("example.com"), "listen", /PORT, HOST:PORT/],
  ["bad --listen port", () => parseListener("[::1]:99999", "--listen"), "--listen.port", /range/],
  // fd names and socket options
  ["fd name with colon", () => socket({ fdName: "a:b" }), "fdName", /not an fd name/],
  ["fd name too long", () => socket({ fdName: "a".repeat(65) }), "fdName", /1–64/],
  ["reserved fd name", () => socket({ fdName: "apprun-bundle-1" }), "fdName", /apprun's own/],
  [
    "listener name vs fdName",
    () => socket({ fdName: "http", listeners: [{ ...TCP, name: "admin" }] }),
    "listeners[0].name",
    /one socket unit per name/,
  ],
  [
    "bad listener name",
    () => socket({ listeners: [{ ...TCP, name: "a b" }] }),
    "listeners[0].name",
    /not an fd name/,
  ],
  ["backlog 0", () => socket({ backlog: 0 }), "backlog", /out of range/],
  ["socketMode without unix", () => socket({ socketMode: "0600" }), "socketMode", /unix sockets/],
  [
    "bad socketMode",
    () => socket({ listeners: [{ kind: "unix", path: "/run/a.sock" }], socketMode: "0999" }),
    "socketMode",
    /not a mode/,
  ],
  ["socketUser without unix", () => socket({ socketUser: "www-data" }), "socketUser", /unix/],
  [
    "socketGroup in a user unit",
    () =>
      socket({
        scope: "user",
        listeners: [{ kind: "unix", path: "/run/a.sock" }],
        socketGroup: "www-data",
      }),
    "socketGroup",
    /user manager cannot/,
  ],
  [
    "socketUser root",
    () => socket({ listeners: [{ kind: "unix", path: "/run/a.sock" }], socketUser: "root" }),
    "socketUser",
    /root/,
  ],
  ["isIPv6Only without [::]", () => socket({ isIPv6Only: true }), "isIPv6Only", /IPv6 address/],
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
  // paths
  ["paths: bad name", () => unitPaths({ name: "a b", scope: "system" }), "name", /unit name/],
  [
    "paths: bad scope",
    () => unitPaths({ name: "a", scope: "both" as "user" }),
    "scope",
    /"system" or "user"/,
  ],
  [
    "paths: relative root",
    () => unitPaths({ name: "a", scope: "system", root: "out" }),
    "root",
    /absolute/,
  ],
  [
    "paths: user without home",
    () => unitPaths({ name: "a", scope: "user" }),
    "configHome",
    /XDG_CONFIG_HOME/,
  ],
  [
    "paths: relative configHome",
    () => unitPaths({ name: "a", scope: "user", configHome: ".config" }),
    "configHome",
    /absolute/,
  ],
  [
    "paths: relative home",
    () => unitPaths({ name: "a", scope: "user", home: "~" }),
    "home",
    /absolute/,
  ],
  [
    "paths: bad file",
    () => unitPaths({ name: "a", scope: "system" }).pathOf("../a.service"),
    "file",
    /not a \.service or \.socket/,
  ],
];

for (const [what, call, option, why] of cases) {
  Deno.test(`units/ refuses ${what} (${option})`, () => assertUnitError(call, option, why));
}

Deno.test("units/ accepts the edge values its checks allow", () => {
  const edges: (() => unknown)[] = [
    () => socket({ listeners: [{ kind: "tcp", port: 1 }, { kind: "tcp", port: 65535 }] }),
    () => socket({ listeners: [{ kind: "unix", path: "/" + "a".repeat(106) }] }),
    () => socket({ listeners: [{ kind: "tcp", host: "255.255.255.255", port: 1 }] }),
    () => socket({ fdName: "a".repeat(64), backlog: 1 }),
    () => service({ fdStoreMax: 3, ownListeners: [TCP, { ...TCP, port: 8081 }] }),
    () => service({ limitNoFile: 20000, maxConnections: 20000 - 256 }),
    () => service({ drainTimeout: 30, timeoutStop: 35 }),
    () => service({ startLimitInterval: 0, startLimitBurst: 1 }),
    () => service({ startLimitBurst: 20 }),
    () => service({ restartDelay: 0, watchdog: 1, drainTimeout: 0.001 }),
    () => service({ environment: { _: "", a_B9: "\t" } }),
    () => service({ execStart: ["/usr/bin/apprun", "/home/me/app.ts"], protectHome: "read-only" }),
    () =>
      service({ user: "www-data", group: "www-data", ownListeners: [{ kind: "tcp", port: 80 }] }),
  ];
  for (const edge of edges) edge();
});

Deno.test("parseListener() reads the --listen forms", () => {
  assert.deepEqual(parseListener("8080"), { kind: "tcp", port: 8080 });
  assert.deepEqual(parseListener("0.0.0.0:80"), { kind: "tcp", host: "0.0.0.0", port: 80 });
  assert.deepEqual(parseListener("[::]:80"), { kind: "tcp", host: "::", port: 80 });
  assert.deepEqual(parseListener("[0:0::0001]:80"), { kind: "tcp", host: "::1", port: 80 });
  assert.deepEqual(parseListener("[2001:DB8::A]:443"), {
    kind: "tcp",
    host: "2001:db8::a",
    port: 443,
  });
  assert.deepEqual(parseListener("/run/app/http.sock"), {
    kind: "unix",
    path: "/run/app/http.sock",
  });
});

Deno.test("unitPaths() puts units where each manager and packager looks", () => {
  const system = unitPaths({ name: "hello", scope: "system" });
  assert.equal(system.dir, "/etc/systemd/system");
  assert.equal(system.service, "/etc/systemd/system/hello.service");
  assert.equal(system.socket, "/etc/systemd/system/hello.socket");
  assert.equal(system.pathOf("hello-admin.socket"), "/etc/systemd/system/hello-admin.socket");
  const staged = unitPaths({ name: "hello", scope: "system", root: "/tmp/pkg/" });
  assert.equal(staged.service, "/tmp/pkg/usr/lib/systemd/system/hello.service");
  const stagedUser = unitPaths({ name: "hello", scope: "user", root: "/tmp/pkg" });
  assert.equal(stagedUser.socket, "/tmp/pkg/usr/lib/systemd/user/hello.socket");
  const xdg = unitPaths({ name: "hello", scope: "user", configHome: "/home/me/.cfg", home: "/x" });
  assert.equal(xdg.service, "/home/me/.cfg/systemd/user/hello.service");
  const home = unitPaths({ name: "hello", scope: "user", home: "/home/me" });
  assert.equal(home.socket, "/home/me/.config/systemd/user/hello.socket");
  const rootfs = unitPaths({ name: "hello", scope: "system", root: "/" });
  assert.equal(rootfs.service, "/usr/lib/systemd/system/hello.service");
});

Deno.test("renderUnits() makes a [::] socket IPv6-only when IPv4 on its port is elsewhere", () => {
  const units = renderUnits({
    name: "app",
    execStart: EXEC,
    listeners: [
      { kind: "tcp", port: 80 },
      { kind: "tcp", host: "10.1.2.3", port: 80, name: "internal" },
    ],
  });
  assert.deepEqual(units.map((u) => u.file), ["app.socket", "app-internal.socket", "app.service"]);
  assert.match(units[0].text, /^BindIPv6Only=ipv6-only$/m);
  assert.doesNotMatch(units[1].text, /BindIPv6Only/);
  assert.match(units[2].text, /^Sockets=app\.socket app-internal\.socket$/m);
  assert.match(units[2].text, /^Also=app\.socket app-internal\.socket$/m);
});

Deno.test("renderServiceUnit() with no sockets is wanted by its target instead", () => {
  const system = service({ sockets: [], ownListeners: [TCP] });
  assert.doesNotMatch(system, /^(Sockets|Requires|Also)=/m);
  assert.match(system, /^WantedBy=multi-user\.target$/m);
  const user = service({ scope: "user", sockets: [] });
  assert.match(user, /^WantedBy=default\.target$/m);
});
