/**
 * @module
 * Every way units/ refuses a socket-side option — unit names and text, listeners, fd names,
 * socket settings, unit paths: each must throw UnitOptionError (an AppRunError with code
 * ERR_UNIT_OPTION) naming the option and the reason. Also the accepted edge values, so that
 * a check cannot silently grow stricter.
 */
import assert from "node:assert/strict";
import { type Listener, parseListener, renderUnits, unitPaths } from "../../units/mod.ts";
import { assertUnitError, EXEC, service, socket, TCP } from "./_util.ts";

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

Deno.test("units/ accepts the socket edge values its checks allow, and writes them", () => {
  const edges: [() => string, string[]][] = [
    [
      () => socket({ listeners: [{ kind: "tcp", port: 1 }, { kind: "tcp", port: 65535 }] }),
      ["ListenStream=1", "ListenStream=65535"],
    ],
    [
      () => socket({ listeners: [{ kind: "unix", path: "/" + "a".repeat(106) }] }),
      [`ListenStream=/${"a".repeat(106)}`],
    ],
    [
      () => socket({ listeners: [{ kind: "tcp", host: "255.255.255.255", port: 1 }] }),
      ["ListenStream=255.255.255.255:1"],
    ],
    [
      () => socket({ fdName: "a".repeat(64), backlog: 1 }),
      [`FileDescriptorName=${"a".repeat(64)}`, "Backlog=1"],
    ],
  ];
  for (const [render, lines] of edges) {
    const text = render().split("\n");
    for (const line of lines) assert.ok(text.includes(line), `${line} in:\n${text.join("\n")}`);
  }
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
