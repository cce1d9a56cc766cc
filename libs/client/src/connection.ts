// One socket to an edge, from open to close: sends the login, watches for silence, parses frames and reports
// how it ended. It decides nothing: the client chooses what a refused login or a close code means.
import WebSocket from 'ws';
import type { LoginFrame } from '#events';
import { ClientError } from './errors';
import type { Settings } from './options';
import { parseServerFrame, type ReadFrame } from './wire';

export interface ConnectionEnd {
  code: number;
  reason: string;
  /** How long the connection was logged in; 0 if it never was. */
  loggedInForMs: number;
  /** Why it ended: a known cause (refused login, login timeout, silence) or the close itself. */
  failure: ClientError;
}

export interface ConnectionListener {
  frame(read: ReadFrame): void;
  unreadable(): void;
  socketError(err: Error): void;
  closed(end: ConnectionEnd): void;
}

export class Connection {
  private readonly socket: WebSocket;
  private loggedInAt: number | undefined;
  private lastHeardAt = Date.now();
  private failure: ClientError | undefined;
  private socketError: string | undefined;
  private readonly loginTimer: NodeJS.Timeout;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly listener: ConnectionListener,
  ) {
    const { url, ca, cert, key, rejectUnauthorized, loginTimeoutMs } = settings;
    const socket = new WebSocket(url, { ca, cert, key, rejectUnauthorized });
    this.socket = socket;
    // One budget for handshake and login: an edge that accepts the socket but never answers is as dead
    // as one that never accepts it.
    this.loginTimer = setTimeout(
      () => this.abort(new ClientError('TIMEOUT', {}, `no login reply within ${loginTimeoutMs} ms`)),
      loginTimeoutMs,
    );
    socket.on('open', () => this.sendLogin());
    socket.on('message', (data) => this.receive(data));
    socket.on('ping', () => this.heard());
    socket.on('pong', () => this.heard());
    socket.on('error', (err) => {
      this.socketError = err.message;
      listener.socketError(err);
    });
    socket.on('close', (code, reason) => this.closed(code, reason.toString()));
  }

  get isLoggedIn(): boolean {
    return this.loggedInAt !== undefined && this.socket.readyState === WebSocket.OPEN;
  }

  /** The edge accepted the login: send() writes from now on, and silence is watched. */
  loggedIn(): void {
    clearTimeout(this.loginTimer);
    this.loggedInAt = Date.now();
    this.startHeartbeat();
  }

  /** Writes on the logged-in socket; false when it is not (the caller keeps the frame for the next one). */
  send(text: string): boolean {
    if (!this.isLoggedIn) return false;
    this.socket.send(text);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate();
    else this.socket.close(code, reason);
  }

  /**
   * The session cannot go on, but the edge has more to say: after a refused login it closes with the code
   * that names the cause (4401, 4403). Wait for that close, and close ourselves if it does not come.
   */
  endAfter(failure: ClientError, graceMs: number): void {
    this.failure ??= failure;
    clearTimeout(this.loginTimer);
    this.graceTimer = setTimeout(() => this.close(1000, 'login refused'), graceMs);
  }

  /** Drops the socket at once; `failure` is what the close will be reported as. */
  abort(failure: ClientError): void {
    this.failure ??= failure;
    this.socket.terminate();
  }

  private sendLogin(): void {
    this.heard();
    const { token, shopId, clientId, type } = this.settings;
    const frame: LoginFrame = { op: 'login', token };
    if (shopId !== undefined) frame.shop_id = shopId;
    if (clientId !== undefined) frame.client_id = clientId;
    if (type !== undefined) frame.type = type;
    this.socket.send(JSON.stringify(frame));
  }

  private heard(): void {
    this.lastHeardAt = Date.now();
  }

  private receive(data: WebSocket.RawData): void {
    this.heard();
    const read = parseServerFrame(textOf(data));
    if (read) this.listener.frame(read);
    else this.listener.unreadable();
  }

  // The edge pings every 25 s (SPEC §3). Silence for idleTimeoutMs means a half-open TCP connection, which
  // no close event would ever report; half way there we ping ourselves, so a quiet edge is not taken for a
  // dead one.
  private startHeartbeat(): void {
    const idleMs = this.settings.idleTimeoutMs;
    if (idleMs <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      const silentMs = Date.now() - this.lastHeardAt;
      if (silentMs >= idleMs) {
        this.abort(new ClientError('CONNECTION_LOST', {}, `nothing heard from the edge for ${silentMs} ms`));
      } else if (silentMs >= idleMs / 2 && this.socket.readyState === WebSocket.OPEN) {
        this.socket.ping();
      }
    }, idleMs / 4);
    this.heartbeatTimer.unref();
  }

  private closed(code: number, reason: string): void {
    clearTimeout(this.loginTimer);
    clearTimeout(this.graceTimer);
    clearInterval(this.heartbeatTimer);
    const loggedInForMs = this.loggedInAt === undefined ? 0 : Date.now() - this.loggedInAt;
    const failure =
      this.failure ??
      new ClientError('CONNECTION_LOST', { closeCode: code, msg: reason || this.socketError });
    this.loggedInAt = undefined;
    this.listener.closed({ code, reason, loggedInForMs, failure });
  }
}

function textOf(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
