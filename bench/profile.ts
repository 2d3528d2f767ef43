/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: the functions with the
 * most self time, and the same grouped by package, optionally within a time window (the heavy
 * run) given in the profile's clock (process.hrtime, microseconds).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  location: string;
  package: string;
  selfMs: number;
  /** Of the busy (non-idle) time in the window. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** True when the samples were limited to the window asked for. */
  windowed: boolean;
  windowMs: number;
  busyMs: number;
  idleMs: number;
  functions: SelfTime[];
  /** Self time by package, node's built-ins (and native code) charged to the package that called them. */
  packages: Array<{ package: string; selfMs: number; percent: number }>;
  /** The packages grouped by what they are for (roleOf). */
  roles: Array<{ role: string; selfMs: number; percent: number }>;
}

/** What a package is there for, in the local stack: where the time goes, coarsely. */
export function roleOf(pkg: string): string {
  if (/^@(smithy|aws-sdk|aws-crypto)\//.test(pkg) || pkg === 'fast-xml-parser' || pkg === 'uuid' || pkg === 'tslib') return 'AWS SDK, client side';
  if (['dynalite', 'big.js', 'buffer-crc32', 'lazy', 'lock', 'async', 'once', 'minimist'].includes(pkg) || /level/.test(pkg) || pkg === 'module-error') return 'local DynamoDB (dynalite, LevelDB)';
  if (['fauxqs', 'fastify', 'find-my-way', 'avvio', 'light-my-request', 'toad-cache', 'valibot', 'secure-json-parse', 'fast-querystring', 'fast-uri', 'rfdc', 'abstract-logging', 'process-warning', 'fast-decode-uri-component', 'fastq', 'json-schema-ref-resolver', 'mnemonist', 'safe-regex2', 'ret', 'semver'].includes(pkg) || /^(@fastify\/|pino|fast-json-stringify|ajv)/.test(pkg)) return 'local SQS (fauxqs, fastify)';
  if (pkg === 'waas bench') return 'bench meter';
  if (pkg.startsWith('waas ')) return `waas code (${pkg.slice(5).split('/')[0]})`;
  if (pkg.startsWith('@aws-lambda-powertools/') || pkg === 'zod' || pkg === 'standardwebhooks' || pkg === 'fast-sha256' || pkg.startsWith('@stablelib/')) return 'libraries the handlers use';
  if (pkg === 'tsx' || pkg === 'esbuild' || pkg.startsWith('wasm://')) return 'tsx loader (local only)';
  if (pkg === 'undici') return 'HTTP client (undici: targets, callbacks)';
  if (pkg === '(garbage collector)' || pkg === '(program)' || pkg === '(native / V8)') return 'V8: GC, compiler, native';
  if (pkg === 'node (built-in)') return 'node built-ins (event loop, sockets)';
  return 'other';
}

const builtIn = (name: string) => name === 'node (built-in)' || name === '(native / V8)';

/** Which package (or part of this project) a script URL belongs to. */
export function packageOf(url: string, root: string): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return 'node (built-in)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const match = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g);
  if (match) return (match[match.length - 1] ?? '').replace('node_modules/', '');
  if (path.startsWith(root)) {
    const parts = path.slice(root.length + 1).split('/');
    return `waas ${parts[0] === 'lambdas' && parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return path;
}

function shortLocation(url: string, line: number, root: string): string {
  if (!url) return '';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf('node_modules/');
  if (modules >= 0) path = path.slice(modules + 'node_modules/'.length);
  else if (path.startsWith(root)) path = path.slice(root.length + 1);
  return `${path}:${line + 1}`;
}

export function summarizeProfile(profile: CpuProfile, root: string, options: { fromUs?: number; toUs?: number; limit?: number; file?: string } = {}): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const charged = new Map<number, string>();
  /** The package a sample is charged to: its own, or for built-ins the nearest caller's. */
  const chargedTo = (id: number): string => {
    const known = charged.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    const frame = node?.callFrame;
    let name = frame ? packageOf(frame.url, root) : '(native / V8)';
    if (frame && frame.functionName.startsWith('(') && !frame.url) name = frame.functionName;
    else if (builtIn(name)) {
      const up = parent.get(id);
      if (up !== undefined) {
        const caller = chargedTo(up);
        if (!caller.startsWith('(')) name = caller;
      }
    }
    charged.set(id, name);
    return name;
  };
  const packages = new Map<string, number>();
  let from = options.fromUs ?? -Infinity;
  let to = options.toUs ?? Infinity;
  // The window must overlap the profile, or the clocks differ: then the whole profile counts.
  const windowed = options.fromUs !== undefined && options.toUs !== undefined && from < profile.endTime && to > profile.startTime;
  if (!windowed) {
    from = -Infinity;
    to = Infinity;
  }
  const self = new Map<string, { name: string; location: string; package: string; us: number }>();
  let time = profile.startTime;
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (time < from || time > to) continue;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') {
      idle += delta;
      continue;
    }
    busy += delta;
    const pkg = chargedTo(node.id);
    packages.set(pkg, (packages.get(pkg) ?? 0) + delta);
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}|${frame.columnNumber}`;
    const entry = self.get(key) ?? { name: frame.functionName || '(anonymous)', location: shortLocation(frame.url, frame.lineNumber, root), package: packageOf(frame.url, root), us: 0 };
    entry.us += delta;
    self.set(key, entry);
  }
  const percent = (us: number) => (busy > 0 ? Number(((us / busy) * 100).toFixed(1)) : 0);
  const functions = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, options.limit ?? 15)
    .map((entry) => ({ name: entry.name, location: entry.location, package: entry.package, selfMs: Number((entry.us / 1000).toFixed(1)), percent: percent(entry.us) }));
  const roles = new Map<string, number>();
  for (const [pkg, us] of packages) roles.set(roleOf(pkg), (roles.get(roleOf(pkg)) ?? 0) + us);
  return {
    file: options.file ?? '',
    windowed,
    windowMs: Number((((windowed ? to - from : profile.endTime - profile.startTime)) / 1000).toFixed(1)),
    busyMs: Number((busy / 1000).toFixed(1)),
    idleMs: Number((idle / 1000).toFixed(1)),
    functions,
    packages: [...packages]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([name, us]) => ({ package: name, selfMs: Number((us / 1000).toFixed(1)), percent: percent(us) })),
    roles: [...roles].sort((a, b) => b[1] - a[1]).map(([role, us]) => ({ role, selfMs: Number((us / 1000).toFixed(1)), percent: percent(us) })),
  };
}

/**
 * The .cpuprofile node --cpu-prof wrote for the main thread of `pid` in `dir`: its files are
 * named CPU.<date>.<time>.<pid>.<thread>.<sequence>.cpuprofile, and other threads (tsx's loader
 * runs in one) write their own.
 */
export function findProfile(dir: string, pid: number): string | undefined {
  const name = readdirSync(dir).find((file) => {
    const parts = file.split('.');
    return parts[0] === 'CPU' && parts[3] === String(pid) && parts[4] === '0' && file.endsWith('.cpuprofile');
  });
  return name ? join(dir, name) : undefined;
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}
