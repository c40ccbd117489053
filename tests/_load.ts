/**
 * @module
 * The one check every load proof makes on a `scripts/e2e/load.ts` report: nothing was lost —
 * no error, reset, early close, wrong answer or bad status, every request answered, and at
 * least `minAnswered` of them (a run that did nothing proves nothing). Plus the latency line the
 * proofs print. Owns nothing; the load generator is scripts/e2e/load.ts.
 */
import assert from "node:assert/strict";
import { type LoadReport, percentile } from "../scripts/e2e/load.ts";

/** Asserts that `report` lost nothing and answered at least `minAnswered` requests. */
export function assertNothingLost(report: LoadReport, label: string, minAnswered: number): void {
  assert.deepEqual(report.errors.slice(0, 5), [], `${label}: errors`);
  assert.deepEqual(
    {
      resets: report.resets,
      earlyCloses: report.earlyCloses,
      wrongAnswers: report.wrongAnswers,
      badStatus: report.badStatus,
    },
    { resets: 0, earlyCloses: 0, wrongAnswers: 0, badStatus: 0 },
    `${label}: failures`,
  );
  assert.equal(report.answered, report.requests, `${label}: every request answered`);
  assert.ok(report.answered >= minAnswered, `${label}: only ${report.answered} answered`);
}

/** "p50 … ms, p99 … ms, max … ms" of the report's latencies. */
export function latencyLine(report: LoadReport): string {
  const ms = (p: number) => `${percentile(report.latencies, p).toFixed(1)} ms`;
  return `p50 ${ms(50)}, p99 ${ms(99)}, max ${ms(100)}`;
}
