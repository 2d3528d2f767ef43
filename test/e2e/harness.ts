/**
 * What the end-to-end tests drive: the real local stack (`npm start`'s entry, as a child
 * process of its own, so it can be killed -9) and real HTTP targets on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';

export const root = join(import.meta.dirname, '..', '..');
export const demo = { clientId: '66666666666668', verifyToken: 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a' };

/** Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'waas-e2e-'));
}

export interface RunningStack {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** Ctrl-C, and waits for the exit. */
  stop(): Promise<void>;
  /** kill -9, and waits for the exit. */
  crash(): Promise<void>;
}

/** Starts `npm start`'s entry on a free port; resolves once it printed its URL and /health answers. */
export async function startStack(options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<RunningStack> {
  const dataDir = options.dataDir ?? tempDataDir();
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the local stack exited (${child.exitCode}):\n${output}`);
      return output.match(/waas is ready at (http:\/\/\S+)/)?.[1];
    },
    30_000,
    'the local stack to start',
  );
  const health = await fetch(`${url}/health`);
  if (health.status !== 200) throw new Error(`/health answered ${health.status}`);
  return {
    url,
    dataDir,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
    crash: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Target {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

export type Respond = (request: Received, response: ServerResponse, count: number) => unknown;

/** A real HTTP server on 127.0.0.1 that records what it receives and answers with `respond`. */
export async function startTarget(respond: Respond = (_, response) => response.end('ok')): Promise<Target> {
  const received: Received[] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry: Received = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      received.push(entry);
      void respond(entry, response, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** A call to the API with the given JSON (or raw string) body and headers. */
export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  // undici's request, unlike fetch, sends a body with GET: the seed's clients do.
  const response = await request(`${base}${path}`, {
    // A connection of its own, closed after the answer. A kept-alive one, which the stack
    // closes after 5 s idle (its keepAliveTimeout), can be picked for a call just as it closes:
    // on a loaded machine (the event loop held by a CLI run, other suites on the cores) that
    // happens, and the call fails "other side closed" instead of being answered.
    reset: true,
    method: method as Dispatcher.HttpMethod,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export function basic(clientId: string, token: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${clientId}:${token}`).toString('base64')}` };
}

/** Waits until the job's record satisfies `done`, and returns it. */
export async function waitForJob(base: string, jobId: string, done: (job: Record<string, unknown>) => boolean, auth = demo, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const answer = await call(base, 'GET', `/status?job_id=${jobId}`, undefined, basic(auth.clientId, auth.verifyToken));
      return answer.status === 200 && done(answer.body) ? answer.body : undefined;
    },
    timeoutMs,
    `job ${jobId}`,
  );
}

export interface CliRun {
  status: number | null;
  json: unknown;
  stderr: string;
}

/** `npm run --silent <cli> -- ...args` against DATA_DIR; its stdout parsed as JSON. */
function cli(script: string, dataDir: string, args: string[]): CliRun {
  const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 30_000,
  });
  let json: unknown;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    json = undefined;
  }
  return { status: run.status, json, stderr: run.stderr };
}

/** The clients CLI. */
export const clients = (dataDir: string, ...args: string[]): CliRun => cli('scripts/clients.ts', dataDir, args);

/** The operator's jobs CLI. */
export const jobs = (dataDir: string, ...args: string[]): CliRun => cli('scripts/jobs.ts', dataDir, args);

/** The pids of `pid`'s child processes, from /proc (Linux). */
export function childPids(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The fields after the command's closing parenthesis: state, then ppid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** How many of `keys` came more than once (a delivery's repeats, by job id or webhook-id). */
export function duplicates(keys: string[]): number {
  return keys.length - new Set(keys).size;
}

/** What a test started, to end: a stack (stop) or a target (close). */
type Running = { stop(): Promise<void> } | { close(): Promise<void> } | undefined;

/** Ends what a test started, in order, then removes its data directory. */
export async function tearDown(dataDir: string, ...running: Running[]): Promise<void> {
  for (const each of running) {
    if (each && 'stop' in each) await each.stop();
    else if (each) await each.close();
  }
  removeDir(dataDir);
}
