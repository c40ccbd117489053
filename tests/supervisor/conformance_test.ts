/**
 * Conformance: one scenario, one protocol-level worker, run under a real systemd 252 (a
 * private user manager, tests/_systemd.ts) and under the embedded supervisor; everything the
 * scenario observes must be the same. Covers the fdstore (invalid and empty names, dedupe,
 * overflow, order, FDSTOREREMOVE=1), STATUS= splitting, NotifyAccess=main and LISTEN_* after a
 * restart. Skipped where a private systemd cannot run.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { freePort } from "../_net.ts";
import { LineClient, PYTHON, withSupervisor, WORKER_PY } from "./_harness.ts";

/** What the scenario can see of a service manager. */
interface Manager {
  port: number;
  statusText(): Promise<string>;
  storedCount(): Promise<number>;
  restart(): Promise<void>;
}

const keep = ["FDPOLL=0"];
const store = (name: string) => ["FDSTORE=1", `FDNAME=${name}`, ...keep];

async function scenario(m: Manager): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const c1 = await LineClient.connect(m.port);
  const c2 = await LineClient.connect(m.port);
  const c3 = await LineClient.connect(m.port);
  try {
    await c1.request({ cmd: "notify", lines: store("bad:name"), attach: "conn" });
    await c2.request({ cmd: "notify", lines: store(""), attach: "conn2" });
    await c3.request({ cmd: "notify", lines: store("third"), attach: "dup" });
    await c3.request({ cmd: "notify", lines: store("pipes"), attach: "pipes", count: 2 });
    await c3.request({ cmd: "notify", lines: ["STATUS=a\\b\\\\c d"] });
    await c3.request({ cmd: "notify", lines: ["STATUS=from a child"], child: true });
    await c3.request({ cmd: "barrier" });
    seen.stored = await m.storedCount();
    seen.status = await m.statusText();
    await m.restart();
    const info = await c1.request({ cmd: "info" });
    seen.names = info.env.LISTEN_FDNAMES;
    seen.count = info.env.LISTEN_FDS;
    seen.c1 = info.conn;
    seen.c2 = (await c2.request({ cmd: "info" })).conn;
    seen.c3 = (await c3.request({ cmd: "info" })).conn;
    seen.statusAfterRestart = await m.statusText();
    await c1.request({ cmd: "notify", lines: ["FDSTOREREMOVE=1", "FDNAME=third"] });
    await c1.request({ cmd: "barrier" });
    seen.storedAfterRemove = await m.storedCount();
  } finally {
    await Promise.all([c1.close(), c2.close(), c3.close()]);
  }
  return seen;
}

// The protocol worker is not apprun: its minimal units are written here, not by units/.
systemdTest(
  "the same worker sees the same thing under systemd 252 and the supervisor",
  async (um) => {
    const port = freePort();
    await um.installUnits([
      {
        file: "tw.socket",
        text: `[Socket]\nListenStream=127.0.0.1:${port}\nFileDescriptorName=http\n`,
      },
      {
        file: "tw.service",
        text:
          `[Service]\nType=notify\nExecStart=${PYTHON} ${WORKER_PY}\nFileDescriptorStoreMax=3\n`,
      },
    ]);
    await um.start("tw.socket", "tw.service");
    const underSystemd = await scenario({
      port,
      statusText: () => um.show("tw.service", "StatusText"),
      storedCount: async () => Number(await um.show("tw.service", "NFileDescriptorStore")),
      restart: async () => {
        const r = await um.systemctl("restart", "tw.service");
        assert.equal(r.code, 0, r.stderr);
      },
    });
    await um.systemctl("stop", "tw.service", "tw.socket");

    let underSupervisor: Record<string, unknown> = {};
    await withSupervisor({ fdStoreMax: 3 }, async ({ sup, port }) => {
      await sup.start();
      underSupervisor = await scenario({
        port,
        statusText: () => Promise.resolve(sup.status().status),
        storedCount: () => Promise.resolve(sup.status().storedFds.reduce((n, s) => n + s.count, 0)),
        restart: async () => void await sup.restart(),
      });
    });
    assert.deepEqual(underSupervisor, underSystemd);
    assert.deepEqual(underSystemd, {
      stored: 3,
      status: "ab\\c d",
      names: "http:third::stored",
      count: "4",
      c1: "stored",
      c2: "",
      c3: "third",
      statusAfterRestart: "",
      storedAfterRemove: 2,
    });
  },
);
