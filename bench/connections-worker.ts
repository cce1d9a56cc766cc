// A load-generator process of the connections scenario (run.ts forks two, so neither holds more than half the
// sockets under the per-process open-file limit). Told over IPC: connect its devices, drop some, reconnect them.
import { WsDevice } from './lib/ws-device';

export type WorkerCommand =
  | { cmd: 'connect'; url: string; tokens: string[]; localAddresses: string[]; concurrency: number }
  | { cmd: 'drop'; count: number }
  | { cmd: 'reconnect' }
  | { cmd: 'exit' };

export interface WorkerReport {
  ok: number;
  failed: number;
  ms: number;
  firstError?: string;
}

let url = '';
let tokens: string[] = [];
let localAddresses: string[] = [];
let concurrency = 100;
const devices = new Map<number, WsDevice>();
let dropped: number[] = [];

/** Opens (and logs in) the given devices with at most `concurrency` handshakes in flight. */
async function open(indexes: number[]): Promise<WorkerReport> {
  const start = performance.now();
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  async function lane() {
    while (next < indexes.length) {
      const i = indexes[next++]!;
      try {
        const device = await WsDevice.open({
          url,
          token: tokens[i]!,
          localAddress: localAddresses[i % localAddresses.length],
          timeoutMs: 60_000,
        });
        devices.set(i, device);
        ok += 1;
      } catch (err) {
        failed += 1;
        firstError ??= (err as Error).message; // WsDevice.open rejects with Errors only
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { ok, failed, ms: performance.now() - start, ...(firstError ? { firstError } : {}) };
}

process.on('message', async (message: WorkerCommand) => {
  switch (message.cmd) {
    case 'connect': {
      ({ url, tokens, localAddresses, concurrency } = message);
      process.send?.(await open(tokens.map((_, i) => i)));
      return;
    }
    case 'drop': {
      // A network blip: the sockets vanish without a close handshake, as when a shop's router restarts.
      dropped = [...devices.keys()].slice(0, message.count);
      for (const i of dropped) {
        devices.get(i)?.socket.terminate();
        devices.delete(i);
      }
      process.send?.({ ok: dropped.length, failed: 0, ms: 0 });
      return;
    }
    case 'reconnect': {
      process.send?.(await open(dropped));
      return;
    }
    case 'exit': {
      for (const device of devices.values()) device.socket.terminate();
      process.exit(0);
      return;
    }
    default: {
      const never: never = message;
      return never;
    }
  }
});
