// A device on a raw `ws` socket: login, notify, ack. The benchmark uses this rather than libs/client so that the
// load generator's cost per message is one JSON.parse and one send, not the client's outbox, dedup and inbox.
import WebSocket from 'ws';

export interface ServerFrame {
  op: string;
  code?: number;
  msg?: string;
  req_id?: string;
  id?: string;
  data?: unknown;
}

export interface WsDeviceOptions {
  url: string;
  token: string;
  /** Loopback source address (127.0.0.x), so many sockets do not run out of ephemeral ports. */
  localAddress?: string;
  timeoutMs?: number;
}

export class WsDevice {
  onFrame: (frame: ServerFrame, raw: string) => void = () => undefined;
  private pendingAcks: string[] = [];
  private isAckQueued = false;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const raw = data.toString();
      this.onFrame(JSON.parse(raw) as ServerFrame, raw);
    });
  }

  /** Opens the socket and logs in; resolves once the login reply (code 0) arrived. */
  static open(options: WsDeviceOptions): Promise<WsDevice> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        localAddress: options.localAddress,
        perMessageDeflate: false,
        handshakeTimeout: options.timeoutMs ?? 30_000,
      });
      const timer = setTimeout(() => fail(new Error('login timed out')), options.timeoutMs ?? 30_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.terminate();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('close', (code) => fail(new Error(`closed with ${code} before login`)));
      socket.once('open', () => socket.send(JSON.stringify({ op: 'login', token: options.token })));
      socket.once('message', (data) => {
        const reply = JSON.parse(data.toString()) as ServerFrame;
        if (reply.op !== 'login' || reply.code !== 0)
          return fail(new Error(`login refused: ${data.toString()}`));
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket.on('error', () => undefined); // a dead socket shows in the counts; one benchmark device concerns no one
        resolve(new WsDevice(socket));
      });
    });
  }

  send(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** Acks a message id; the ids of one event-loop turn go out as one ack frame, as libs/client does. */
  ack(id: string): void {
    this.pendingAcks.push(id);
    if (this.isAckQueued) return;
    this.isAckQueued = true;
    setImmediate(() => {
      this.isAckQueued = false;
      const ids = this.pendingAcks;
      this.pendingAcks = [];
      for (let i = 0; i < ids.length; i += 500) this.send({ op: 'ack', ids: ids.slice(i, i + 500) });
    });
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close(1000);
      setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}
