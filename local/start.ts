/**
 * `npm start`: the whole service on this machine until Ctrl-C. Settings come from the
 * environment (PORT, HOST, DATA_DIR, EGRESS_ALLOW_CIDRS), with the contract's defaults.
 */
import './quiet.ts';
import { startLocalStack } from './stack.ts';

const started = Date.now();
const host = process.env['HOST'] || '127.0.0.1';
const port = Number(process.env['PORT'] ?? 3000);
const stack = await startLocalStack({
  dataDir: process.env['DATA_DIR'] || './.waas',
  host,
  port,
  egressAllowCidrs: process.env['EGRESS_ALLOW_CIDRS'] ?? '127.0.0.0/8,::1/128',
  onError: (error) => console.error('[waas]', error instanceof Error ? `${error.name}: ${error.message}` : error),
}).catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') console.error(`waas could not start: ${host}:${port} is in use (set PORT to another port, or 0 for any)`);
  else console.error('waas could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});

const { recovered, upgraded, demo } = stack;
console.log(`waas is ready at ${stack.url} (started in ${Date.now() - started} ms; data in ${stack.dataDir})`);
if (upgraded.jobs + upgraded.keys > 0) {
  console.log(`  rewrote ${upgraded.jobs} jobs and ${upgraded.keys} Idempotency-Keys kept in an older layout in today's`);
}
if (recovered.jobs + recovered.callbacks > 0) {
  console.log(`  resumed ${recovered.jobs} unfinished jobs and ${recovered.callbacks} pending callbacks`);
}
console.log(`  demo client_id:      ${demo.clientId}`);
console.log(`  demo verify_token:   ${demo.verifyToken}`);
console.log(`  demo signing_secret: ${demo.signingSecret}`);
console.log(`  try: curl -u ${demo.clientId}:${demo.verifyToken} ${stack.url}/webhook`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log('waas is stopping…');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void stack.stop().then(() => process.exit(0));
  });
}
