/**
 * The local stand-in for Lambda's execution environments. Each function runs in worker threads,
 * each thread one environment: its own module state (SDK clients, caches, the limiter, the
 * metrics buffer, as each Lambda instance has its own), running `perEnvironment` invocations at
 * once (one, as Lambda's classic environments; more, as Managed Instances). Invocations beyond
 * the function's maximum concurrency wait for a slot to come free; an environment is made on
 * demand (a cold start) and retired after it has been idle a while. An
 * invocation still running at its function's timeout is abandoned as Lambda abandons it: its
 * thread is terminated, so whatever it was doing stops mid-way, and the caller is told it timed out.
 *
 * ```ts
 * const execute = new LocalFunction({ name: 'execute', entry: 'lambdas/execute.ts', timeoutSeconds: 90, memoryMb: 512, maxConcurrency: 10 });
 * await execute.start();
 * const response = await execute.invoke(sqsEvent);
 * await execute.stop();
 * ```
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FunctionName } from '../lib/definitions.ts';
import { invocationReport } from './invocations.ts';

const projectRoot = join(import.meta.dirname, '..');
const bootstrap = new URL('./environment.mjs', import.meta.url);

export interface LocalFunctionOptions {
  name: FunctionName;
  /** The handler module, relative to the project root (definitions' `functions[name].entry`). */
  entry: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Invocations at most, at once: invocations beyond it wait. */
  maxConcurrency: number;
  /**
   * Invocations one environment runs at once (default 1, as Lambda's classic environments do;
   * more, as Lambda Managed Instances do, saves a laptop the threads: AWS_LAMBDA_MAX_CONCURRENCY
   * tells the libraries in it, as Lambda does).
   */
  perEnvironment?: number;
  /** Environments made at start and kept however idle (provisioned, in Lambda's words). Default 0. */
  warm?: number;
  /** An environment idle this long is retired, down to `warm` (default 30 s). */
  idleMs?: number;
  /** Modules each environment imports before its handler, as NODE_OPTIONS=--import would on Lambda. */
  preload?: readonly string[];
  /** Told of an environment that failed outside an invocation. */
  onError?: (error: unknown) => void;
}

/** The invocation outlived its function's timeout and was abandoned. */
export class FunctionTimedOut extends Error {
  override name = 'FunctionTimedOut';
}

/** The handler threw (or its environment died): the error as Lambda would report it. */
export class FunctionError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = errorType;
  }
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** One execution environment: a worker thread with its handler loaded, running up to its share of invocations. */
class Environment {
  readonly ready: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Invocations given this environment, running or about to. */
  claimed = 0;
  idleSince = Date.now();
  /** Its thread is gone, or going (ended by a timeout, retired, or stopped): it takes no more invocations. */
  dead = false;
  private buried = false;

  constructor(
    private readonly worker: Worker,
    onDeath: (environment: Environment, error: Error) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      worker.once('message', (message: { ready?: boolean }) => (message.ready ? resolve() : reject(new Error('the environment did not start'))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the environment exited (${code}) before it was ready`)));
    });
    worker.on('message', (message: { id?: number; result?: unknown; error?: { name: string; message: string } }) => {
      const pending = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!pending || message.id === undefined) return;
      this.pending.delete(message.id);
      if (message.error) pending.reject(new FunctionError(message.error.name, message.error.message));
      else pending.resolve(message.result);
    });
    const die = (error: Error) => {
      if (this.buried) return;
      this.buried = true;
      this.dead = true;
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
      onDeath(this, error);
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new FunctionError('Runtime.ExitError', `the environment exited (${code})`)));
  }

  /** Its worker thread's id. */
  get threadId(): number {
    return this.worker.threadId;
  }

  /** Invocations running in it now. */
  get load(): number {
    return this.pending.size;
  }

  /**
   * Runs one invocation; past its deadline the thread is terminated and the invocation rejected
   * as timed out (any other invocation the environment was running ends with it, as a crash).
   */
  run(event: unknown, deadline: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const started = Date.now();
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new FunctionTimedOut(`the invocation timed out after ${Math.round((deadline - started) / 1000)} s`));
        void this.terminate();
      }, Math.max(0, deadline - started));
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.worker.postMessage({ id, event, deadline, requestId: randomUUID() });
    });
  }

  async terminate(): Promise<void> {
    this.dead = true;
    await this.worker.terminate();
  }
}

export class LocalFunction {
  private readonly all = new Set<Environment>();
  private readonly waiting: Array<(environment: Environment) => void> = [];
  private starting = 0;
  private running = 0;
  private stopped = false;
  private reaper: NodeJS.Timeout | undefined;
  private readonly perEnvironment: number;

  constructor(private readonly options: LocalFunctionOptions) {
    this.perEnvironment = Math.max(1, options.perEnvironment ?? 1);
  }

  /** Invocations running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Environments alive now, busy or idle. */
  get environments(): number {
    return this.all.size;
  }

  /** The worker threads of the environments alive now. */
  get threadIds(): number[] {
    return [...this.all].map((environment) => environment.threadId);
  }

  /** Makes the warm environments, and starts retiring idle ones. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.warm ?? 0 }, () => this.spawn()));
    const idleMs = this.options.idleMs ?? 30_000;
    this.reaper = setInterval(() => this.retireIdle(idleMs), Math.min(idleMs, 10_000));
    this.reaper.unref();
  }

  /** Runs the handler with `event` in an environment with room for it, as Lambda invokes it. */
  async invoke<R = unknown>(event: unknown): Promise<R> {
    if (this.stopped) throw new FunctionError('Runtime.Stopped', `${this.options.name} is stopping`);
    this.running++;
    const started = performance.now();
    try {
      const environment = await this.acquire();
      try {
        return (await environment.run(event, Date.now() + this.options.timeoutSeconds * 1000)) as R;
      } finally {
        this.release(environment);
      }
    } finally {
      this.running--;
      invocationReport(this.options.name, performance.now() - started);
    }
  }

  /** Takes no more invocations, lets those in flight end (each within its timeout), and ends every environment. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.reaper);
    while (this.running > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.all([...this.all].map((environment) => environment.terminate()));
    this.all.clear();
  }

  /** The busiest environment that has room (the others stay idle, to be retired), or a new one, or a wait. */
  private async acquire(): Promise<Environment> {
    let chosen: Environment | undefined;
    for (const environment of this.all) {
      if (environment.dead || environment.claimed >= this.perEnvironment) continue;
      if (!chosen || environment.claimed > chosen.claimed) chosen = environment;
    }
    if (chosen) {
      chosen.claimed++;
      return chosen;
    }
    if ((this.all.size + this.starting) * this.perEnvironment < this.options.maxConcurrency) {
      const made = await this.spawn();
      made.claimed++;
      return made;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** An invocation's slot is free: the next waiting invocation takes it. */
  private release(environment: Environment): void {
    environment.claimed--;
    environment.idleSince = Date.now();
    if (environment.dead) return;
    const next = this.waiting.shift();
    if (next) {
      environment.claimed++;
      next(environment);
    }
  }

  private async spawn(): Promise<Environment> {
    this.starting++;
    try {
      const worker = new Worker(bootstrap, {
        workerData: {
          entry: pathToFileURL(join(projectRoot, this.options.entry)).href,
          preload: [...(this.options.preload ?? [])],
          functionName: this.options.name,
          memoryMb: this.options.memoryMb,
        },
        // The environment's variables as the function's configuration sets them: the stack's,
        // now; and, past one invocation at a time, Lambda's own word for how many it runs.
        env: { ...process.env, ...(this.perEnvironment > 1 ? { AWS_LAMBDA_MAX_CONCURRENCY: String(this.perEnvironment) } : {}) },
      });
      const environment = new Environment(worker, (dead, error) => this.bury(dead, error));
      await environment.ready;
      this.all.add(environment);
      return environment;
    } finally {
      this.starting--;
    }
  }

  /** An environment that died (its timeout, or a crash): gone; waiting invocations get a new one. */
  private bury(environment: Environment, error: Error): void {
    this.all.delete(environment);
    if (environment.load === 0 && environment.claimed === 0 && !(error instanceof FunctionError && error.errorType === 'Runtime.ExitError')) this.options.onError?.(error);
    if (this.waiting.length === 0 || this.stopped) return;
    this.spawn().then(
      (made) => {
        for (let slot = 0; slot < this.perEnvironment && this.waiting.length > 0; slot++) {
          made.claimed++;
          this.waiting.shift()?.(made);
        }
      },
      (failure: unknown) => this.options.onError?.(failure),
    );
  }

  private retireIdle(idleMs: number): void {
    const now = Date.now();
    const idle = [...this.all].filter((environment) => environment.claimed === 0 && environment.idleSince < now - idleMs);
    // The most recently used stay warm.
    idle.sort((a, b) => a.idleSince - b.idleSince);
    for (const environment of idle.slice(0, Math.max(0, this.all.size - (this.options.warm ?? 0)))) {
      this.all.delete(environment);
      void environment.terminate();
    }
  }
}
