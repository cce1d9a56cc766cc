// A broker process's own view of its memory, through the V8 inspector (the process runs with --inspect on a
// loopback port): force a full garbage collection, then read process.memoryUsage(), so memory per connection is
// measured on live objects rather than on whatever garbage the login burst left behind.
import WebSocket from 'ws';

export interface Inspector {
  collectGarbage(): Promise<void>;
  memoryUsage(): Promise<NodeJS.MemoryUsage>;
  close(): void;
}

// The shapes below are the inspector protocol's (Chrome DevTools Protocol), fixed by V8; JSON gives them no type.
export async function attachInspector(port: number): Promise<Inspector> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const socket = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.on('message', (data) => {
    const reply = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (reply.id !== undefined) waiting.get(reply.id)?.(reply.result);
  });
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    async collectGarbage() {
      await call('HeapProfiler.collectGarbage');
    },
    async memoryUsage() {
      const result = (await call('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      })) as { result: { value: string } };
      return JSON.parse(result.result.value) as NodeJS.MemoryUsage;
    },
    close() {
      socket.close();
    },
  };
}
