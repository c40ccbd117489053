/**
 * @module
 * Golden tests: the units rendered from tests/units/_cases.ts must equal, byte for byte, the
 * files in tests/units/golden/. After a deliberate change, regenerate them with
 * `APPRUN_UPDATE_GOLDEN=1 scripts/test.sh tests/units/golden_test.ts` and review the diff.
 */
import assert from "node:assert/strict";
import { renderUnits } from "../../units/mod.ts";
import { cases } from "./_cases.ts";
import { GOLDEN } from "./_util.ts";

const isUpdating = Deno.env.get("APPRUN_UPDATE_GOLDEN") === "1";
const EXEC = "/usr/local/bin/apprun";

for (const [name, opts] of Object.entries(cases(EXEC))) {
  Deno.test(`renderUnits() matches golden files for "${name}"`, async () => {
    const units = renderUnits(opts);
    for (const unit of units) {
      const path = `${GOLDEN}/${unit.file}`;
      if (isUpdating) await Deno.writeTextFile(path, unit.text);
      assert.equal(unit.text, await Deno.readTextFile(path), `${unit.file} differs from golden`);
    }
  });
}

Deno.test("golden dir holds no file that no case renders", async () => {
  const rendered = new Set(
    Object.values(cases(EXEC)).flatMap((opts) => renderUnits(opts).map((u) => u.file)),
  );
  for await (const entry of Deno.readDir(GOLDEN)) {
    assert.ok(rendered.has(entry.name), `stale golden file ${entry.name}`);
  }
});
