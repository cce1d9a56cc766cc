// A scripted WebSocket peer on a real socket (port 0) for the device client's own tests. It is not the edge
// and models none of its rules: it answers logins as the test says and otherwise does only what the test
// tells it, so reconnects, re-sends, acks and dedup can be driven frame by frame.
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { DeviceClient, type DeviceClientOptions } from '#client';
import type { ClientFrame, LoginFrame } from '#events';

export type LoginAnswer = { code: number; msg?: string; close?: number } | 'silent';

/** One accepted socket, seen from the server side. */
export class Peer {
  readonly frames: ClientFrame[] = [];
  private readonly waiters: Array<{ op: string; resolve(frame: ClientFrame): void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(
    readonly socket: WebSocket,
    readonly index: number,
  ) {
    socket.on('message', (data) => this.received(JSON.parse(data.toString()) as ClientFrame));
    this.closed = once(socket, 'close').then(([code, reason]) => ({ code, reason: String(reason) }));
  }

  /** The next frame from the client with this op, in arrival order; each frame is taken once. */
  next<Op extends ClientFrame['op']>(op: Op): Promise<Extract<ClientFrame, { op: Op }>> {
    const index = this.frames.findIndex((frame) => frame.op === op);
    if (index >= 0) {
      const [frame] = this.frames.splice(index, 1);
      return Promise.resolve(frame as Extract<ClientFrame, { op: Op }>);
    }
    return new Promise((resolve) => {
      this.waiters.push({ op, resolve: (frame) => resolve(frame as Extract<ClientFrame, { op: Op }>) });
    });
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** A reply as the protocol shapes it: op, code, msg, time, and the request's req_id. */
  reply(op: string, code: number, fields: Record<string, unknown> = {}): void {
    this.send({ op, code, msg: code === 0 ? 'ok' : 'refused', time: new Date().toISOString(), ...fields });
  }

  pushMessage(id: string, attempt = 1, fields: Record<string, unknown> = {}): void {
    this.send({
      op: 'message',
      id,
      shop_id: 's1',
      table_id: 'T1',
      type: 'add_dish',
      status: 0,
      title: 'add dish',
      data: { dish: 'tea' },
      user_info: {},
      from_client_id: 'sub1',
      created_at: new Date().toISOString(),
      attempt,
      ...fields,
    });
  }

  /** A `handled` notice (SPEC §10) about this device's copy `id`; handled by pos2 unless the fields say otherwise. */
  pushHandled(id: string, fields: Record<string, unknown> = {}): void {
    this.send({
      op: 'handled',
      id,
      event_id: 'E1',
      status: 2,
      handled_by: { kind: 'device', client_id: 'pos2' },
      handled_at: new Date().toISOString(),
      ...fields,
    });
  }

  /**
   * Pushes messages in one TCP write, so the client reads them as one burst (as it would a redelivered
   * backlog). ws has no public cork; the underlying net.Socket does.
   */
  pushBurst(messages: Array<{ id: string; attempt?: number }>): void {
    // ws keeps its net.Socket in a private field; corking it is the only way to force one write.
    const tcp = (this.socket as unknown as { _socket: Socket })._socket;
    tcp.cork();
    for (const { id, attempt } of messages) this.pushMessage(id, attempt);
    process.nextTick(() => tcp.uncork());
  }

  private received(frame: ClientFrame): void {
    const waiter = this.waiters.findIndex((w) => w.op === frame.op);
    if (waiter >= 0) {
      const [w] = this.waiters.splice(waiter, 1);
      w?.resolve(frame);
      return;
    }
    this.frames.push(frame);
  }
}

export class ScriptedEdge {
  readonly peers: Peer[] = [];
  /** Every login frame received, in order. */
  readonly logins: LoginFrame[] = [];
  /** How the next logins are answered; a test may change it at any time. */
  loginAnswer: (peer: Peer) => LoginAnswer = () => ({ code: 0 });
  private readonly server: WebSocketServer;
  /** Peers whose login was answered and that no nextPeer() call has taken yet. */
  private readonly arrived: Peer[] = [];
  private readonly arrivals: Array<(peer: Peer) => void> = [];

  private constructor(server: WebSocketServer) {
    this.server = server;
    server.on('connection', (socket) => this.accepted(socket));
  }

  static async start(options: { autoPong?: boolean } = {}): Promise<ScriptedEdge> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', ...options });
    await once(server, 'listening');
    return new ScriptedEdge(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  /** The next socket to arrive (already logged in unless the login answer says otherwise), in order. */
  nextPeer(): Promise<Peer> {
    const peer = this.arrived.shift();
    if (peer) return Promise.resolve(peer);
    return new Promise((resolve) => this.arrivals.push(resolve));
  }

  async stop(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  private accepted(socket: WebSocket): void {
    const peer = new Peer(socket, this.peers.length);
    this.peers.push(peer);
    void peer.next('login').then((login) => {
      this.logins.push(login);
      const answer = this.loginAnswer(peer);
      if (answer !== 'silent') {
        const data = answer.code === 0 ? { conn_id: `c${peer.index}`, edge_id: 'scripted' } : undefined;
        const msg = answer.msg ?? (answer.code === 0 ? 'ok' : 'refused');
        peer.reply('login', answer.code, { req_id: login.req_id, data, msg });
        if (answer.close) socket.close(answer.close, msg);
      }
      const waiting = this.arrivals.shift();
      if (waiting) waiting(peer);
      else this.arrived.push(peer);
    });
  }
}

/** A client with waits short enough for a test, pointed at the scripted edge. */
export function clientFor(edge: ScriptedEdge, options: Partial<DeviceClientOptions> = {}): DeviceClient {
  return new DeviceClient({
    url: edge.url,
    token: 'device-token',
    shopId: 's1',
    clientId: 'pos1',
    type: 'main',
    backoff: { baseMs: 5, maxMs: 20 },
    ...options,
  });
}
