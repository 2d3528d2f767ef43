/**
 * The bench's handle on the stack process: starts bench/stack-child.ts with a temporary
 * DATA_DIR, waits (bounded) until it is ready, asks it for snapshots, reads its peak RSS, and
 * always stops it — gracefully first (so a --cpu-prof profile is written), then with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FromChild, Snapshot, ToChild } from './protocol.ts';

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
      env: { ...process.env, DATA_DIR: this.dataDir, EGRESS_ALLOW_CIDRS: process.env['EGRESS_ALLOW_CIDRS'] ?? '127.0.0.0/8,::1/128' },
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

  async itemSizes(jobIds: string[]): Promise<Array<{ sk: string; bytes: number }>> {
    const answer = await this.request<Extract<FromChild, { type: 'itemSizes' }>>({ type: 'itemSizes', jobIds }, 30_000);
    return answer.items;
  }

  /** Throws if the stack process died on its own (checked while waiting for jobs). */
  assertAlive(): void {
    if (this.failure) throw this.failure;
  }

  /** Peak resident set size (VmHWM) in bytes, or undefined where /proc is not there. */
  peakRss(): number | undefined {
    return this.pid ? readPeakRss(this.pid) : undefined;
  }

  /** Resets the peak RSS counter (Linux: clear_refs 5), so a phase measures its own peak. */
  resetPeakRss(): boolean {
    return this.pid ? resetPeakRss(this.pid) : false;
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

export function readPeakRss(pid: number | 'self'): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function resetPeakRss(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
