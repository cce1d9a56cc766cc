// A device of the original system, as bare as its firmware: it sends text exactly as given (the original's frames
// byte for byte) and keeps every text it receives as is, JSON or not (the echo is not JSON).
import WebSocket from 'ws';
import { receive } from './received';

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
  const received = await receive(ws, (data) => String(data));
  return {
    ws,
    texts: received.items,
    closed: received.closed,
    send: (text) => ws.send(text),
    next: received.next,
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
