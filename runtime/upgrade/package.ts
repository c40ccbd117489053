/**
 * @module
 * `apprun package`: a Debian package of one service (docs/design.md, "Shipping"), built with
 * `dpkg-deb` from a staging tree:
 *
 *   /usr/lib/NAME/NAME                  the artifact (artifact.ts) — needs nothing else
 *   /usr/lib/NAME/apprun.json           the manifest apprun upgrade/rollback/status read
 *   /usr/lib/systemd/system/NAME.socket, NAME.service   from units/ (ExecStart: the copy
 *                                       the scripts keep in /var/lib/apprun/NAME)
 *   /usr/share/doc/NAME/{copyright,changelog.Debian.gz}
 *   DEBIAN/{control,md5sums,postinst,prerm,postrm}      (package_scripts.ts)
 *
 * Owns the staging directory it makes (removed at the end); writes the .deb by temp + rename.
 */
import { createHash } from "node:crypto";
import { renderUnits } from "../../units/mod.ts";
import { APPRUN_VERSION } from "../version.ts";
import { buildArtifact } from "./artifact.ts";
import { CompileError } from "./errors.ts";
import { lastLine, runCommand } from "./exec.ts";
import { isHandlerFile } from "./layout.ts";
import type { ServiceSettings } from "./install.ts";
import { type Manifest, MANIFEST_FORMAT, renderManifest } from "./manifest.ts";
import {
  maintainerScripts,
  packagedBin,
  packagePaths,
  type UpgradeStyle,
} from "./package_scripts.ts";

/** Options for {@linkcode buildPackage}. Paths absolute; durations in ms. */
export interface PackageOptions extends ServiceSettings {
  /** A handler file (built into an artifact) or an artifact. */
  source: string;
  /** The package's and the service's name. */
  name: string;
  /** The package's version (Debian syntax). */
  version: string;
  /** The .deb to write. */
  output: string;
  maintainer: string;
  description?: string;
  style: UpgradeStyle;
  include?: string[];
  print(line: string): void;
}

/** What was built. */
export interface BuiltPackage {
  output: string;
  bytes: number;
  artifactBytes: number;
  versionLine: string;
  ms: number;
}

const DPKG_ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

/** Builds the .deb. Throws {@linkcode CompileError} naming the problem. */
export async function buildPackage(opts: PackageOptions): Promise<BuiltPackage> {
  const t0 = performance.now();
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(opts.name)) {
    throw new CompileError(
      `--name: "${opts.name}" is not a Debian package name (lower-case letters, digits, "+-.")`,
    );
  }
  if (!/^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$/.test(opts.version)) {
    throw new CompileError(`--version: "${opts.version}" is not a Debian version (e.g. 1.2.0-1)`);
  }
  const arch = DPKG_ARCH[Deno.build.arch];
  if (!arch) throw new CompileError(`no Debian architecture for ${Deno.build.arch}`);
  const stage = await Deno.makeTempDir({ prefix: "apprun-package-" });
  try {
    const paths = packagePaths(opts.name);
    const artifact = `${stage}${paths.artifact}`;
    await Deno.mkdir(dirOf(artifact), { recursive: true });
    let versionLine: string;
    if (isHandlerFile(opts.source)) {
      const built = await buildArtifact({
        handler: opts.source,
        output: artifact,
        name: opts.name,
        appVersion: opts.version,
        include: opts.include,
      });
      versionLine = built.versionLine;
    } else {
      await Deno.copyFile(opts.source, artifact);
      await Deno.chmod(artifact, 0o755);
      const r = await runCommand(artifact, ["version"], { timeoutMs: 30_000 });
      if (r.code !== 0) throw new CompileError(`${opts.source} version: ${lastLine(r)}`);
      versionLine = r.stdout.trim();
    }
    opts.print(`artifact: ${versionLine}`);
    const units = renderUnits({
      name: opts.name,
      scope: "system",
      listeners: opts.listeners,
      execStart: [
        packagedBin(opts.name, opts.style),
        "serve",
        "--drain-timeout",
        `${opts.drainTimeoutMs / 1000}s`,
      ],
      drainTimeout: opts.drainTimeoutMs / 1000,
      environment: opts.environment,
      environmentFiles: opts.environmentFiles,
      watchdog: opts.watchdogMs === undefined ? undefined : opts.watchdogMs / 1000,
      maxConnections: opts.maxConnections,
      parallel: opts.parallel,
      limitNoFile: opts.maxConnections === undefined
        ? undefined
        : Math.max(20000, opts.maxConnections + 256),
    });
    for (const u of units) await writeFile(`${stage}/usr/lib/systemd/system/${u.file}`, u.text);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      name: opts.name,
      scope: "system",
      bin: packagedBin(opts.name, "handoff"),
      kind: "artifact",
      source: paths.artifact,
      units: units.map((u) => `/usr/lib/systemd/system/${u.file}`),
      listeners: opts.listeners,
      ...(opts.health !== undefined ? { health: opts.health } : {}),
      drainTimeoutMs: opts.drainTimeoutMs,
      apprun: APPRUN_VERSION,
      installedAt: new Date().toISOString(),
    };
    if (opts.style === "handoff") {
      await writeFile(`${stage}${paths.manifest}`, renderManifest(manifest));
    }
    await writeDocs(stage, opts, versionLine);
    const sockets = units.filter((u) => u.file.endsWith(".socket")).map((u) => u.file);
    const scripts = maintainerScripts({ name: opts.name, style: opts.style, sockets });
    await Deno.mkdir(`${stage}/DEBIAN`, { mode: 0o755 });
    chmodDirs(stage);
    await writeFile(`${stage}/DEBIAN/md5sums`, await md5sums(stage));
    for (const [file, text] of Object.entries(scripts)) {
      await writeFile(`${stage}/DEBIAN/${file}`, text, 0o755);
    }
    await writeFile(
      `${stage}/DEBIAN/control`,
      control(opts, arch, await installedKb(stage), versionLine),
    );
    const temp = `${opts.output}.${Deno.pid}.tmp`;
    const r = await runCommand(
      "dpkg-deb",
      ["--root-owner-group", "-Zgzip", "-z1", "--build", stage, temp],
      { timeoutMs: 300_000 },
    );
    if (r.code !== 0) {
      await Deno.remove(temp).catch(() => {});
      throw new CompileError(`dpkg-deb --build failed: ${lastLine(r)}`);
    }
    await Deno.rename(temp, opts.output);
    return {
      output: opts.output,
      bytes: Deno.statSync(opts.output).size,
      artifactBytes: Deno.statSync(artifact).size,
      versionLine,
      ms: performance.now() - t0,
    };
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

function control(opts: PackageOptions, arch: string, kb: number, versionLine: string): string {
  const summary = opts.description ?? "web service that upgrades without dropping connections";
  return [
    `Package: ${opts.name}`,
    `Version: ${opts.version}`,
    `Architecture: ${arch}`,
    `Maintainer: ${opts.maintainer}`,
    `Installed-Size: ${kb}`,
    "Section: web",
    "Priority: optional",
    `Description: ${summary.split("\n")[0]}`,
    ` ${opts.name}, served by apprun: ${versionLine}.`,
    " Upgrades of this package do not stop the service: the new version takes",
    " every live connection over through systemd's file descriptor store, and",
    " is rolled back to the previous one if it fails to start.",
    "",
  ].join("\n");
}

async function writeDocs(stage: string, opts: PackageOptions, versionLine: string) {
  const doc = `${stage}/usr/share/doc/${opts.name}`;
  const year = new Date().getUTCFullYear();
  await writeFile(
    `${doc}/copyright`,
    `${opts.name} ${opts.version}, packaged by apprun package from ${opts.source}.\n\n` +
      `Copyright ${year} ${
        opts.maintainer.replace(/ <.*$/, "")
      } and the authors of ${opts.name}.\n\n` +
      `The artifact /usr/lib/${opts.name}/${opts.name} holds the app, apprun ${APPRUN_VERSION} ` +
      `(MIT), Deno ${Deno.version.deno} (MIT)\nand the npm packages the app uses, each with ` +
      "its license in its node_modules directory.\n",
  );
  const date = new Date().toUTCString().replace("GMT", "+0000");
  const log = `${opts.name} (${opts.version}) unstable; urgency=medium\n\n` +
    `  * ${versionLine}.\n\n -- ${opts.maintainer}  ${date}\n`;
  // Policy §12.7: a native package (no Debian revision) has changelog.gz, others changelog.Debian.gz.
  const changelog = `${doc}/${opts.version.includes("-") ? "changelog.Debian" : "changelog"}`;
  await writeFile(changelog, log);
  const r = await runCommand("gzip", ["-9", "-n", changelog], {
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new CompileError(`gzip failed: ${lastLine(r)}`);
}

/** DEBIAN/md5sums: every file but DEBIAN/'s, by path relative to the root. */
async function md5sums(stage: string): Promise<string> {
  const lines: string[] = [];
  for (const rel of walk(stage, "").sort()) {
    const hash = createHash("md5").update(await Deno.readFile(`${stage}/${rel}`)).digest("hex");
    lines.push(`${hash}  ${rel}\n`);
  }
  return lines.join("");
}

async function installedKb(stage: string): Promise<number> {
  let bytes = 0;
  for (const rel of walk(stage, "")) bytes += (await Deno.stat(`${stage}/${rel}`)).size;
  return Math.ceil(bytes / 1024);
}

/** Every directory of the package 0755, whatever the umask or makeTempDir gave. */
function chmodDirs(dir: string): void {
  Deno.chmodSync(dir, 0o755);
  for (const e of Deno.readDirSync(dir)) if (e.isDirectory) chmodDirs(`${dir}/${e.name}`);
}

function walk(root: string, rel: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(rel ? `${root}/${rel}` : root)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (p === "DEBIAN") continue;
    if (e.isDirectory) out.push(...walk(root, p));
    else out.push(p);
  }
  return out;
}

async function writeFile(path: string, text: string, mode = 0o644): Promise<void> {
  await Deno.mkdir(dirOf(path), { recursive: true, mode: 0o755 });
  await Deno.writeTextFile(path, text, { mode });
  await Deno.chmod(path, mode);
}

function dirOf(p: string): string {
  return p.slice(0, p.lastIndexOf("/")) || "/";
}
