/**
 * A test driver for tests/upgrade/atomic_test.ts: runs the steps of an upgrade's swap itself
 * (runtime/upgrade/swap.ts, the same functions `apprun upgrade` runs, under the same lock) and
 * stops after the step it is asked to, printing `paused at STEP`, until the test SIGKILLs it.
 * The steps, in order:
 *
 * - `staged-partial`: 4 MiB of NEW copied beside BIN;
 * - `staged`: the whole copy fsynced (the lock is held from here on, as in `apprun upgrade`);
 * - `kept-previous`: BIN's file is also BIN.prev;
 * - `swapped`: NEW is BIN.
 *
 * Usage: `deno run -A swap_driver.ts BIN NAME NEW STEP`. Holds nothing but the lock and the
 * temp file, both left as they are at the kill.
 */
import { UpgradeLock } from "../../runtime/upgrade/lock.ts";
import {
  keepAsPrevious,
  placeNew,
  removeLeftovers,
  stageBeside,
} from "../../runtime/upgrade/swap.ts";

const [bin, name, newPath, stopAt] = Deno.args;
const STEPS = ["staged-partial", "staged", "kept-previous", "swapped"];
if (!STEPS.includes(stopAt)) throw new Error(`step "${stopAt}" is not one of ${STEPS.join(", ")}`);

/** Stops here if asked to: prints the step and waits for the kill. */
async function step(at: string): Promise<void> {
  if (at !== stopAt) return;
  console.log(`paused at ${at}`);
  await new Promise(() => setInterval(() => {}, 60_000));
}

using _lock = UpgradeLock.acquire(bin, name);
removeLeftovers(bin);
let isPartial = false;
const staged = await stageBeside(bin, {
  path: newPath,
  async onCopied(bytes) {
    if (isPartial || bytes < 4 << 20) return;
    isPartial = true;
    await step("staged-partial");
  },
});
await step("staged");
keepAsPrevious(bin);
await step("kept-previous");
placeNew(bin, staged);
await step("swapped");
throw new Error(`${stopAt}: the driver ran past every step`);
