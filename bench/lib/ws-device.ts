// A device on a raw `ws` socket: login, then idle. The connections scenario uses this rather than libs/client so
// that 7,500 sockets per generator process cost only what a socket costs, with a chosen source address, and a
// reconnect is exactly one handshake and one login (no backoff, no client timers).
import WebSocket from 'ws';

export interface WsDeviceOptions {
  url: string;
  token: string;
  /** Loopback source address (127.0.0.x), so many sockets do not run out of ephemeral ports. */
  localAddress?: string;
  timeoutMs?: number;
}

export class WsDevice {
  private constructor(readonly socket: WebSocket) {}

  /** Opens the socket and logs in; resolves once the login reply (code 0) arrived. */
  static open(options: WsDeviceOptions): Promise<WsDevice> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        localAddress: options.localAddress,
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      });
      const timer = setTimeout(() => fail(new Error('login timed out')), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.terminate();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('close', (code) => fail(new Error(`closed with ${code} before login`)));
      socket.once('open', () => socket.send(JSON.stringify({ op: 'login', token: options.token })));
      socket.once('message', (data) => {
        // The login reply is the first frame on the socket; its shape is SPEC §3's reply.
        const reply = JSON.parse(data.toString()) as { op?: string; code?: number };
        if (reply.op !== 'login' || reply.code !== 0)
          return fail(new Error(`login refused: ${data.toString()}`));
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket.on('error', () => undefined); // a dead socket shows in the edge's counts; it concerns no one else
        resolve(new WsDevice(socket));
      });
    });
  }
}
