/**
 * The local stack's storage, in a process of its own so the handlers have the other core:
 * dynalite (DynamoDB's API on LevelDB, on disk) and fauxqs (SQS's API, in memory). It lives
 * exactly as long as its parent: when the parent goes, even by kill -9, the IPC channel closes
 * and this process exits with it, releasing LevelDB's lock for the next start. In fault mode
 * (WAAS_FAULTS, local/faults.ts) it also runs the fault proxies the handlers reach both through.
 */
import '../local/quiet.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
import { faultsEnvName, faultsFromEnv, startFaultProxy, type FaultProxy } from './faults.ts';

export interface StorageReady {
  type: 'ready';
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** In fault mode: where the handlers reach each service, through its fault proxy. */
  faulty?: { dynamodbEndpoint: string; sqsEndpoint: string };
}

export interface StoragePortsArg {
  dynamodb?: number;
  sqs?: number;
  faultyDynamodb?: number;
  faultySqs?: number;
}

const dataDir = process.argv[2];
if (!dataDir || !process.send) {
  console.error('usage: forked by local/storage.ts with DATA_DIR (and the ports to listen on) as its arguments');
  process.exit(2);
}
/** The ports of an earlier run of this storage, so that a restarted one keeps its endpoints. */
const ports = JSON.parse(process.argv[3] ?? '{}') as StoragePortsArg;
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent drains its work first, then stops us.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);

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
await new Promise<void>((resolve, reject) => {
  dynamo.once('error', reject);
  dynamo.listen(ports.dynamodb ?? 0, '127.0.0.1', () => resolve());
});
// fauxqs's own starter listens on every interface; its app, given loopback, serves this machine
// alone. Its queue URLs then name the host the client called, 127.0.0.1.
const sqs = buildApp({ logger: false });
const sqsEndpoint = await sqs.listen({ port: ports.sqs ?? 0, host: '127.0.0.1' });

const dynamodbEndpoint = `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`;
const faults = faultsFromEnv(process.env[faultsEnvName]);
const proxies: FaultProxy[] = faults
  ? await Promise.all([startFaultProxy(dynamodbEndpoint, faults, ports.faultyDynamodb), startFaultProxy(sqsEndpoint, faults, ports.faultySqs)])
  : [];

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  // What the fault mode did, for whoever ran it.
  for (const [index, proxy] of proxies.entries()) console.error(`[waas] faults injected into ${index === 0 ? 'DynamoDB' : 'SQS'} calls: ${JSON.stringify(proxy.injected())}`);
  void Promise.allSettled([...proxies.map((proxy) => proxy.close()), sqs.close(), new Promise<void>((resolve) => dynamo.close(() => resolve()))]).then(() => process.exit(0));
});

const [faultyDynamodb, faultySqs] = proxies;
const ready: StorageReady = {
  type: 'ready',
  dynamodbEndpoint,
  sqsEndpoint,
  ...(faultyDynamodb && faultySqs ? { faulty: { dynamodbEndpoint: faultyDynamodb.endpoint, sqsEndpoint: faultySqs.endpoint } } : {}),
};
process.send(ready);
