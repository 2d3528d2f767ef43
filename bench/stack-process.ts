/**
 * The bench's handle on the stack process: starts bench/stack-child.ts with a temporary
 * DATA_DIR, waits (bounded) until it is ready, asks it for snapshots, reads its and its storage
 * process's peak RSS and CPU from /proc, and always stops it — gracefully first (so a --cpu-prof
 * profile is written), then with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, commandLine, cpuPercent, readCpu, readPeakRss, readRss, resetPeakRss, total } from './proc.ts';
import type { FromChild, ItemSize, Snapshot, ToChild } from './protocol.ts';

export { readPeakRss, resetPeakRss } from './proc.ts';

/**
 * The processes of a local stack: the handlers' (stack), dynalite's and fauxqs's (storage), and
 * any other descendant (others: tsx's esbuild service, started by `--import tsx` in either).
 */
export type Role = 'stack' | 'storage' | 'others';

/** A figure per role and their sum; undefined where /proc did not say. */
export interface PerProcess {
  stack?: number;
  storage?: number;
  others?: number;
  total?: number;
}

/** The stack at rest: nothing submitted, nothing asked of it. */
export interface IdleResult {
  /** Seconds left alone before the window (start-up's and the load's after-effects: GC, V8's memory reducer). */
  settleS: number;
  /** Seconds measured. */
  windowS: number;
  /** CPU over the window, percent of one core (as top shows it). */
  cpuPercent: PerProcess;
  /** Resident memory at the end of the window (VmRSS). */
  rss: PerProcess;
  /** The processes measured at the window's end. */
  processes: Array<{ role: Role; pid: number; command: string }>;
}

/** Adds figures up by role; `total` is their sum. */
export function byRole(figures: Array<{ role: Role; value: number | undefined }>): PerProcess {
  const sums: PerProcess = {};
  for (const { role, value } of figures) if (value !== undefined) sums[role] = (sums[role] ?? 0) + value;
  const sum = total([sums.stack, sums.storage, sums.others]);
  if (sum !== undefined) sums.total = sum;
  return sums;
}

export interface StackProcessOptions {
  root: string;
  /** Directory for --cpu-prof, when profiling. */
  profileDir?: string;
  startTimeoutMs?: number;
  onError?: (message: string) => void;
}

export class StackProcess {
  readonly dataDir: string;
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (message: FromChild) => void; reject: (error: Error) => void }>();
  private output = '';
  private exited: Promise<number | null> = Promise.resolve(null);
  private stopping = false;
  /** Why it died, when it exited without being asked to. */
  failure: Error | undefined;
  url = '';
  pid = 0;

  constructor(private readonly options: StackProcessOptions) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'waas-bench-'));
  }

  async start(): Promise<void> {
    const args = ['--import', 'tsx'];
    if (this.options.profileDir) args.push('--cpu-prof', '--cpu-prof-dir', this.options.profileDir);
    args.push('bench/stack-child.ts');
    const child = spawn(process.execPath, args, {
      cwd: this.options.root,
      // The load submits as the demo client, whatever the shell says of it.
      env: { ...process.env, DATA_DIR: this.dataDir, EGRESS_ALLOW_CIDRS: process.env['EGRESS_ALLOW_CIDRS'] ?? '127.0.0.0/8,::1/128', WAAS_DEMO_CLIENT: 'on' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    // Keep the tail of its output for error messages; the log volume is counted in the child.
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-8_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const failAll = (error: Error) => {
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    };
    child.once('exit', (code, signal) => {
      const error = new Error(`the stack process exited (${signal ?? code})${this.output.trim() ? `; its last output:\n${this.output}` : ' without output'}`);
      if (!this.stopping) this.failure = error;
      failAll(error);
    });
    child.on('message', (message: FromChild) => {
      if (message.type === 'error') this.options.onError?.(message.message);
      else if ('id' in message) {
        this.waiting.get(message.id)?.resolve(message);
        this.waiting.delete(message.id);
      }
    });

    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    const ready = await new Promise<Extract<FromChild, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stack process did not get ready within ${timeoutMs / 1000} s:\n${this.output}`)), timeoutMs);
      child.on('message', (message: FromChild) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the stack process exited (${signal ?? code}) before it was ready:\n${this.output}`));
      });
    });
    this.url = ready.url;
    this.pid = ready.pid;
  }

  /** The stack's process and its descendants, as /proc shows them now. */
  processes(): Array<{ role: Role; pid: number; command: string }> {
    if (!this.pid) return [];
    const found: Array<{ role: Role; pid: number; command: string }> = [{ role: 'stack', pid: this.pid, command: commandLine(this.pid) }];
    const walk = (parent: number, depth: number) => {
      if (depth > 4) return;
      for (const pid of childrenOf(parent)) {
        const command = commandLine(pid);
        found.push({ role: command.includes('storage-child') ? 'storage' : 'others', pid, command });
        walk(pid, depth + 1);
      }
    };
    walk(this.pid, 0);
    return found;
  }

  /**
   * CPU and memory at rest: left alone for `settleMs` (what start-up or a load leaves behind —
   * V8's memory reducer, the last GCs — fades within about 30 s), then each process's CPU time
   * (per-thread schedstat, else utime + stime) over `windowMs` of wall time, then its RSS.
   * Nothing is asked of the stack meanwhile (a snapshot would wake it); only whether it is still
   * alive is checked.
   */
  async idle(windowMs: number, settleMs = 0): Promise<IdleResult> {
    const wait = async (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await new Promise((done) => setTimeout(done, Math.min(500, Math.max(0, end - performance.now()))));
        this.assertAlive();
      }
    };
    await wait(settleMs);
    const before = new Map(this.processes().map(({ pid }) => [pid, readCpu(pid)]));
    const started = performance.now();
    await wait(windowMs);
    const processes = this.processes();
    const cpu = byRole(
      processes.map(({ role, pid }) => {
        const after = readCpu(pid);
        if (!after) return { role, value: undefined };
        // A process born during the window counts whole, from the window's start.
        const from = before.get(pid) ?? { pid, at: started, statNs: 0, ...(after.threads ? { threads: {} } : {}) };
        return { role, value: cpuPercent(from, after) };
      }),
    );
    return { settleS: settleMs / 1000, windowS: windowMs / 1000, cpuPercent: cpu, rss: byRole(processes.map(({ role, pid }) => ({ role, value: readRss(pid) }))), processes };
  }

  private request<T extends FromChild>(message: { type: 'snapshot' } | { type: 'itemSizes'; jobIds: string[] }, timeoutMs = 15_000): Promise<T> {
    const child = this.child;
    if (!child?.connected) return Promise.reject(new Error('the stack process is not running'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the stack process did not answer a ${message.type} request within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      child.send({ ...message, id } as ToChild);
    });
  }

  async snapshot(): Promise<Snapshot> {
    const { type: _type, id: _id, ...snapshot } = await this.request<Extract<FromChild, { type: 'snapshot' }>>({ type: 'snapshot' });
    return snapshot;
  }

  async itemSizes(jobIds: string[]): Promise<ItemSize[]> {
    const answer = await this.request<Extract<FromChild, { type: 'itemSizes' }>>({ type: 'itemSizes', jobIds }, 30_000);
    return answer.items;
  }

  /** Throws if the stack process died on its own (checked while waiting for jobs). */
  assertAlive(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Peak resident set size (VmHWM) in bytes, added up by role, and in total (each process's own
   * peak: an upper bound of them all at once), undefined where /proc is not there.
   */
  peakRss(): PerProcess {
    return byRole(this.processes().map(({ role, pid }) => ({ role, value: readPeakRss(pid) })));
  }

  /** Resets the processes' peak RSS counters (Linux: clear_refs 5), so a phase measures its own peak; false if any refused. */
  resetPeakRss(): boolean {
    const processes = this.processes();
    return processes.length > 0 && processes.map(({ pid }) => resetPeakRss(pid)).every(Boolean);
  }

  /** Stops it: asks, then SIGTERM, then SIGKILL; removes the DATA_DIR. Safe to call twice. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.send({ type: 'stop' } satisfies ToChild);
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Last resort on the way out (synchronous): no child left behind. */
  killNow(): void {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
