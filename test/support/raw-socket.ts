// A bare WebSocket for protocol tests: send raw text, wait for the next frame or the close, nothing automatic.
import WebSocket from 'ws';

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
  const frames: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let taken = 0;
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    send(value) {
      ws.send(typeof value === 'string' ? value : JSON.stringify(value));
    },
    async next(predicate = () => true, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (taken < frames.length) {
          const frame = frames[taken++]!;
          if (predicate(frame)) return frame;
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

/** Opens a socket and logs in with the token; fails the test unless the login succeeds. */
export async function loginRaw(url: string, token: string): Promise<RawSocket> {
  const socket = await openRaw(url);
  socket.send({ op: 'login', token });
  const reply = await socket.next((frame) => frame.op === 'login');
  if (reply.code !== 0) throw new Error(`login refused: ${JSON.stringify(reply)}`);
  return socket;
}
