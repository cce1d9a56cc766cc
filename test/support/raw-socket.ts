// A bare WebSocket for protocol tests: send raw text, wait for the next frame or the close, nothing automatic.
import WebSocket from 'ws';
import { receive } from './received';

export interface RawSocket {
  ws: WebSocket;
  frames: Array<Record<string, unknown>>;
  send(value: unknown): void;
  /** The next frame (after those already taken) matching the predicate. */
  next(
    predicate?: (frame: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function openRaw(url: string, options: WebSocket.ClientOptions = {}): Promise<RawSocket> {
  const ws = new WebSocket(url, options);
  const received = await receive(ws, (data) => JSON.parse(String(data)) as Record<string, unknown>);
  return {
    ws,
    frames: received.items,
    closed: received.closed,
    send(value) {
      ws.send(typeof value === 'string' ? value : JSON.stringify(value));
    },
    next: received.next,
  };
}

/** Opens a socket and logs in with the token; fails the test unless the login succeeds. */
export async function loginRaw(url: string, token: string): Promise<RawSocket> {
  const socket = await openRaw(url);
  socket.send({ op: 'login', token });
  const reply = await socket.next((frame) => frame.op === 'login');
  if (reply.code !== 0) throw new Error(`login refused: ${JSON.stringify(reply)}`);
  return socket;
}
