/**
 * Cold start, measured: each function in definitions.ts bundled exactly as the CDK stack bundles
 * it (lib/constructs/functions.ts: ESM, minified, target node24, platform node, the
 * createRequire banner, the AWS SDK bundled in — nothing external), its size, its largest
 * packages, and how long a fresh `node` takes to import it — against a minimal handler bundled
 * the same way, in the same run.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { functions } from '../lib/definitions.ts';
import { median } from './stats.ts';

export interface BundleResult {
  name: string;
  entry: string;
  bytes: number;
  /** Gzipped, roughly what the deployment zip holds of it (the target counts `bytes`). */
  gzipBytes: number;
  /** Wall time of `await import(bundle)` in a fresh node process, each run. */
  importMs: number[];
  importMedianMs: number;
  /** Where the bytes come from: packages (or the project) by bytes in the output. */
  largest: Array<{ module: string; bytes: number }>;
}

export interface ColdStart {
  node: string;
  runs: number;
  functions: BundleResult[];
  minimal: BundleResult;
}

/** The bundling options of lib/constructs/functions.ts, as esbuild's API spells them. */
export const cdkBundling = {
  bundle: true,
  format: 'esm',
  target: 'node24',
  platform: 'node',
  minify: true,
  sourcemap: false,
  mainFields: ['module', 'main'],
  banner: { js: "import { createRequire } from 'module';const require = createRequire(import.meta.url);" },
  // bundleAwsSDK: true, externalModules: []: the SDK at the version package.json pins, bundled.
  external: [],
} as const;

export const minimalHandler = 'export const handler = async () => ({});\n';

/** Groups a metafile's inputs by package (or "waas" for the project's own files). */
export function largestInputs(metafile: Metafile, limit = 5): Array<{ module: string; bytes: number }> {
  const byModule = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, input] of Object.entries(output.inputs)) {
      const match = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
      const name = match?.[1] ?? 'waas';
      byModule.set(name, (byModule.get(name) ?? 0) + input.bytesInOutput);
    }
  }
  return [...byModule].map(([module, bytes]) => ({ module, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, limit);
}

async function bundle(entry: string, outfile: string, root: string): Promise<{ bytes: number; gzipBytes: number; largest: BundleResult['largest'] }> {
  const result = await build({ ...cdkBundling, mainFields: [...cdkBundling.mainFields], external: [], entryPoints: [entry], outfile, absWorkingDir: root, metafile: true, logLevel: 'silent' });
  return { bytes: statSync(outfile).size, gzipBytes: gzipSync(readFileSync(outfile)).length, largest: largestInputs(result.metafile) };
}

const importScript = 'const t = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t));';

/** Milliseconds a fresh node process takes to import the module (bounded: 30 s). */
export function timeImport(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', importScript, pathToFileURL(file).href], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // As on Lambda: nothing of ours in the environment but the basics the modules may read.
      env: { PATH: process.env['PATH'] ?? '', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const ms = Number(out);
      if (code === 0 && Number.isFinite(ms)) resolve(ms);
      else reject(new Error(`importing ${file} failed (exit ${code}): ${err.slice(0, 500)}`));
    });
  });
}

export async function measureColdStart(root: string, runs: number, onStep?: (done: number, total: number) => void, onTempDir?: (dir: string) => void): Promise<ColdStart> {
  // Under bench/results (ignored by git): what a crash leaves behind is found beside the results.
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const dir = mkdtempSync(join(root, 'bench', 'results', 'bundles-'));
  onTempDir?.(dir);
  try {
    const specs = Object.entries(functions).map(([name, spec]) => ({ name, entry: join(root, spec.entry) }));
    mkdirSync(join(dir, 'minimal-src'));
    const minimalEntry = join(dir, 'minimal-src', 'handler.mjs');
    writeFileSync(minimalEntry, minimalHandler);
    specs.push({ name: 'minimal', entry: minimalEntry });

    const total = specs.length * (runs + 1);
    let done = 0;
    const built: Array<{ name: string; entry: string; file: string; bytes: number; gzipBytes: number; largest: BundleResult['largest'] }> = [];
    for (const spec of specs) {
      const file = join(dir, spec.name, 'index.mjs');
      built.push({ ...spec, file, ...(await bundle(spec.entry, file, root)) });
      onStep?.(++done, total);
    }
    const times = new Map<string, number[]>(built.map((entry) => [entry.name, []]));
    // Round-robin, so a noisy moment spreads over every bundle instead of one.
    for (let run = 0; run < runs; run++) {
      for (const entry of built) {
        times.get(entry.name)?.push(await timeImport(entry.file));
        onStep?.(++done, total);
      }
    }
    const results = built.map((entry): BundleResult => {
      const importMs = times.get(entry.name) ?? [];
      return {
        name: entry.name,
        entry: entry.name === 'minimal' ? '(export const handler = async () => ({}))' : relative(root, entry.entry),
        bytes: entry.bytes,
        gzipBytes: entry.gzipBytes,
        importMs: importMs.map((ms) => Number(ms.toFixed(2))),
        importMedianMs: Number(median(importMs).toFixed(2)),
        largest: entry.largest,
      };
    });
    const minimal = results.find((result) => result.name === 'minimal');
    if (!minimal) throw new Error('the minimal handler was not measured');
    return { node: process.version, runs, functions: results.filter((result) => result !== minimal), minimal };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
