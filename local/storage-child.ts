/**
 * The local stack's storage, in a process of its own so the handlers have the other core:
 * dynalite (DynamoDB's API on LevelDB, on disk) and fauxqs (SQS's API, in memory). It lives
 * exactly as long as its parent: when the parent goes, even by kill -9, the IPC channel closes
 * and this process exits with it, releasing LevelDB's lock for the next start.
 */
import '../local/quiet.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';

export interface StorageReady {
  type: 'ready';
  dynamodbEndpoint: string;
  sqsEndpoint: string;
}

const dataDir = process.argv[2];
if (!dataDir || !process.send) {
  console.error('usage: forked by local/storage.ts with DATA_DIR as its argument');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));

/**
 * Waits for LevelDB's lock: a storage process of a stack killed a moment ago may still hold
 * it for the few milliseconds it takes to notice its parent is gone.
 */
async function waitForLock(path: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new ClassicLevel(path);
    try {
      await probe.open();
      await probe.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${path} stays locked: is another local stack running on this DATA_DIR?`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const path = join(dataDir, 'dynamodb');
mkdirSync(path, { recursive: true });
await waitForLock(path).catch((error: unknown) => {
  console.error(`waas storage: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
const dynamo = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', () => resolve()));
// fauxqs's own starter listens on every interface; its app, given loopback, serves this machine
// alone. Its queue URLs then name the host the client called, 127.0.0.1.
const sqs = buildApp({ logger: false });
const sqsEndpoint = await sqs.listen({ port: 0, host: '127.0.0.1' });

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  void Promise.allSettled([sqs.close(), new Promise<void>((resolve) => dynamo.close(() => resolve()))]).then(() => process.exit(0));
});

const ready: StorageReady = {
  type: 'ready',
  dynamodbEndpoint: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`,
  sqsEndpoint,
};
process.send(ready);
