// A device of the original system, as bare as its firmware: it sends text exactly as given (the original's frames
// byte for byte) and keeps every text it receives as is, JSON or not (the echo is not JSON).
import WebSocket from 'ws';

export interface LegacyDevice {
  ws: WebSocket;
  /** Every text frame received, in order. */
  texts: string[];
  send(text: string): void;
  /** The next text (after those already taken) matching the predicate. */
  next(predicate?: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function openLegacy(url: string, options: WebSocket.ClientOptions = {}): Promise<LegacyDevice> {
  const ws = new WebSocket(url, options);
  const texts: string[] = [];
  const waiters: Array<() => void> = [];
  let taken = 0;
  const wake = () => {
    for (const resolve of waiters.splice(0)) resolve();
  };
  ws.on('message', (data) => {
    texts.push(String(data));
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
    ws,
    texts,
    closed,
    send: (text) => ws.send(text),
    async next(predicate = () => true, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (taken < texts.length) {
          const text = texts[taken++]!;
          if (predicate(text)) return text;
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

/** An upgrade the server refuses: its HTTP status and body. Fails when the upgrade succeeds. */
export function refusedUpgrade(
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    ws.on('open', () => {
      ws.close();
      reject(new Error(`the upgrade to ${url} was accepted`));
    });
    ws.on('error', (err) => reject(err));
  });
}
