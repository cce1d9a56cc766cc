// What a test socket received, in order, and a bounded wait for the next item matching a predicate: shared by the
// v1 raw socket (JSON frames) and the legacy device (text as is).
import WebSocket from 'ws';

export interface Received<T> {
  items: T[];
  closed: Promise<{ code: number; reason: string }>;
  /** The next item (after those already taken) matching the predicate; fails on a close or after the timeout. */
  next(predicate?: (item: T) => boolean, timeoutMs?: number): Promise<T>;
}

/** Starts collecting `ws`'s messages, each turned into an item by `parse`; then waits until the socket is open. */
export async function receive<T>(ws: WebSocket, parse: (data: WebSocket.RawData) => T): Promise<Received<T>> {
  const items: T[] = [];
  const waiters: Array<() => void> = [];
  let taken = 0;
  const wake = () => {
    for (const resolve of waiters.splice(0)) resolve();
  };
  ws.on('message', (data) => {
    items.push(parse(data));
    wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    items,
    closed,
    async next(predicate = () => true, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (taken < items.length) {
          const item = items[taken++]!;
          if (predicate(item)) return item;
        }
        if (ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting for a frame');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('timed out waiting for a frame');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}
