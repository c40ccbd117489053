/**
 * @module
 * The exact text units/_syntax.ts writes for the systemd quoting rules. run_test.ts proves
 * systemd reads each form back as the original value; this pins the spelling.
 */
import assert from "node:assert/strict";
import { formatSeconds, quoteEnvironment, quoteExecWord } from "../../units/_syntax.ts";

Deno.test("quoteExecWord() leaves plain words bare and quotes the rest", () => {
  const expected: [string, string][] = [
    ["/usr/bin/apprun", "/usr/bin/apprun"],
    ["--listen=127.0.0.1:80,[::1]:80", '"--listen=127.0.0.1:80,[::1]:80"'],
    ["--port=8080", "--port=8080"],
    ["100%", "100%%"],
    ["$HOME", "$$HOME"],
    ["${X}", '"$${X}"'],
    ["a b", '"a b"'],
    ["", '""'],
    [";", '";"'],
    ["\\;", '"\\\\;"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["back\\slash", '"back\\\\slash"'],
    ["tab\there", '"tab\\there"'],
    ["ünï", '"ünï"'],
    ["it's", '"it\'s"'],
  ];
  for (const [word, text] of expected) assert.equal(quoteExecWord(word), text, word);
});

Deno.test("quoteEnvironment() quotes the whole assignment, % doubled, $ kept", () => {
  assert.equal(quoteEnvironment("A", "b c"), '"A=b c"');
  assert.equal(quoteEnvironment("P", "100%"), '"P=100%%"');
  assert.equal(quoteEnvironment("D", "$HOME"), '"D=$HOME"');
  assert.equal(quoteEnvironment("Q", '"x\\y'), '"Q=\\"x\\\\y"');
  assert.equal(quoteEnvironment("T", "a\tb"), '"T=a\\tb"');
  assert.equal(quoteEnvironment("E", ""), '"E="');
});

Deno.test("formatSeconds() writes whole seconds or milliseconds", () => {
  assert.equal(formatSeconds(30), "30s");
  assert.equal(formatSeconds(0), "0s");
  assert.equal(formatSeconds(0.25), "250ms");
  assert.equal(formatSeconds(1.5), "1500ms");
  assert.equal(formatSeconds(0.001), "1ms");
});
