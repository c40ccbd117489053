/**
 * @module
 * The option sets the units/ tests render: the golden files are these with a placeholder
 * binary; verify_test.ts renders them with a real one (systemd-analyze checks it exists).
 */
import type { UnitSetOptions } from "../../units/mod.ts";

/** Named option sets; `exec` is the server binary (absolute). */
export function cases(exec: string): Record<string, UnitSetOptions> {
  return {
    // `apprun install app.ts --name hello --port 8080`: every default.
    hello: {
      name: "hello",
      listeners: [{ kind: "tcp", host: "127.0.0.1", port: 8080 }],
      execStart: [exec, "serve", "/srv/hello/app.ts"],
    },
    // The same as a user service (`--user`).
    hellouser: {
      name: "hellouser",
      scope: "user",
      listeners: [{ kind: "tcp", port: 8080 }],
      execStart: [exec, "serve", "/srv/hello/app.ts"],
    },
    // Everything at once: two fd names, dual-stack port 80 next to IPv4, a unix admin
    // socket, an own listener on 443, a named user, and every tunable set.
    multi: {
      name: "multi",
      description: "multi: 100% of the options",
      listeners: [
        { kind: "tcp", host: "0.0.0.0", port: 80 },
        { kind: "tcp", host: "::", port: 80 },
        { kind: "unix", path: "/run/multi/admin.sock", name: "admin" },
      ],
      ownListeners: [{ kind: "tcp", host: "192.0.2.10", port: 443 }],
      execStart: [exec, "serve", "/srv/multi/app.ts", "--drain-timeout", "20", "--name=a b"],
      workingDirectory: "/srv/multi",
      environment: { GREETING: 'say "hi" 100%', HOME_HINT: "$HOME\\x" },
      environmentFiles: ["/etc/multi/env", "-/etc/multi/env.local"],
      user: "www-data",
      group: "www-data",
      backlog: 65535,
      socketMode: "0600",
      socketGroup: "www-data",
      fdStoreMax: 8,
      limitNoFile: 20000,
      maxConnections: 16000,
      drainTimeout: 20,
      parallel: 4,
      timeoutStop: 45,
      restartDelay: 0.25,
      startLimitInterval: 30,
      startLimitBurst: 40,
      watchdog: 15,
      jitless: true,
      readWritePaths: ["/var/lib/multi"],
    },
  };
}
