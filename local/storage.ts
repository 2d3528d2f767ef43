/**
 * Starts the local stack's storage process (local/storage-child.ts) and waits until it serves.
 * Given the ports of an earlier run, it listens on them again: a storage restarted after it
 * died keeps the endpoints the handlers' clients know.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StoragePortsArg, StorageReady } from './storage-child.ts';

export type StoragePorts = StoragePortsArg;

export interface Storage {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** In fault mode (WAAS_FAULTS): the endpoints for the handlers, through the fault proxies. */
  faulty?: { dynamodbEndpoint: string; sqsEndpoint: string };
  ports: StoragePorts;
  pid: number;
  /** Resolves when the process has exited, for whatever reason, with its exit code (or signal). */
  exited: Promise<number | string | null>;
  stop(): Promise<void>;
}

const childPath = fileURLToPath(new URL('./storage-child.ts', import.meta.url));

const portOf = (endpoint: string) => Number(new URL(endpoint).port);

export async function startStorage(dataDir: string, options: { ports?: StoragePorts; timeoutMs?: number } = {}): Promise<Storage> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = fork(childPath, [dataDir, JSON.stringify(options.ports ?? {})], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const ready = await new Promise<StorageReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the storage process did not start within ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (message: StorageReady) => {
      clearTimeout(timer);
      resolve(message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the storage process exited (${code}) before it was ready`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    dynamodbEndpoint: ready.dynamodbEndpoint,
    sqsEndpoint: ready.sqsEndpoint,
    ...(ready.faulty ? { faulty: ready.faulty } : {}),
    ports: {
      dynamodb: portOf(ready.dynamodbEndpoint),
      sqs: portOf(ready.sqsEndpoint),
      ...(ready.faulty ? { faultyDynamodb: portOf(ready.faulty.dynamodbEndpoint), faultySqs: portOf(ready.faulty.sqsEndpoint) } : {}),
    },
    pid: child.pid ?? 0,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.connected) child.send({ type: 'stop' });
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    },
  };
}
