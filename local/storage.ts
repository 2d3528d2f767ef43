/** Starts the local stack's storage process (local/storage-child.ts) and waits until it serves. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StorageReady } from './storage-child.ts';

export interface Storage {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  pid: number;
  stop(): Promise<void>;
}

const childPath = fileURLToPath(new URL('./storage-child.ts', import.meta.url));

export async function startStorage(dataDir: string, timeoutMs = 30_000): Promise<Storage> {
  const child = fork(childPath, [dataDir], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
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
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null && child.connected) child.send({ type: 'stop' });
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    },
  };
}
