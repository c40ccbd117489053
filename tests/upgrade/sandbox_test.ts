/**
 * transientProperties(): what `apprun upgrade` copies from `systemctl show NAME.service` into
 * the transient unit that runs NEW's checks. The systemd tests run it against a real user
 * manager; a system manager's dynamic user cannot run here (the private manager is a user
 * manager), so its mapping is checked on the text systemd 252 prints for such a service.
 */
import assert from "node:assert/strict";
import { transientProperties } from "../../runtime/upgrade/sandbox.ts";

Deno.test("transientProperties() gives a dynamic user's check the service's own user name", () => {
  const show = [
    'Environment=DENO_DIR=/var/cache/hello "GREETING=hi there"',
    "EnvironmentFiles=/etc/hello.env (ignore_errors=yes)",
    "EnvironmentFiles=/etc/hello-secrets.env (ignore_errors=no)",
    "UMask=0077",
    "User=",
    "Group=",
    "DynamicUser=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "CacheDirectory=hello",
    "BindReadOnlyPaths=/srv/data:/srv/data:rbind",
    "ReadWritePaths=",
  ].join("\n");
  assert.deepEqual(transientProperties(show, "hello"), [
    "User=hello",
    'Environment=DENO_DIR=/var/cache/hello "GREETING=hi there"',
    "EnvironmentFile=-/etc/hello.env",
    "EnvironmentFile=/etc/hello-secrets.env",
    "UMask=0077",
    "DynamicUser=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "CacheDirectory=hello",
    "BindReadOnlyPaths=/srv/data:/srv/data:rbind",
  ]);
  const fixed = transientProperties("User=www-data\nDynamicUser=no\nProtectHome=yes\n", "hello");
  assert.deepEqual(fixed, ["User=www-data", "ProtectHome=yes"], "a named user as it is");
});
