// The fault suite's load: shops of sub and main devices on the real device client (reconnect with backoff,
// re-sent notifies, auto-ack with dedup), subs notifying at a steady total rate, optionally the back office
// notifying over HTTP with an Idempotency-Key, retried until answered. It records everything the checker needs:
// every notify with its req_id and every reply, and every message id each main received, with when.
import { DeviceClient, isClientError } from '#client';
import type { MessageFrame } from '#events';
import { registerDevice, type TestContext } from '#test-support';

export interface LoadOptions {
  /** Where devices dial (the balancer). */
  url: string;
  /** Shop ids are `<prefix>-<n>`, so each case's load is its own set of shops. */
  shopPrefix: string;
  shops: number;
  mainsPerShop: number;
  subsPerShop: number;
  /** Device notifies per second over all subs. */
  notifiesPerS: number;
  /** HTTP notifies per second (on behalf of the subs), when apiUrl is given. */
  httpNotifiesPerS?: number;
  apiUrl?: string;
  apiKey?: string;
}

/** code: the reply code over a socket; over HTTP the status, 0 when the request itself failed. */
export interface Reply {
  code: number;
  at: number;
  event_id?: string;
}

export interface NotifyRecord {
  shop: string;
  from: string;
  req_id: string;
  via: 'ws' | 'http';
  sentAt: number;
  /** Every answer seen, 503s included, in order. */
  replies: Reply[];
  /** ok: a success reply; refused: a final error reply; unknown: no final answer (timeout, client closed). */
  outcome: 'pending' | 'ok' | 'refused' | 'unknown';
  event_id?: string;
  error?: string;
}

export interface Device {
  shop: string;
  clientId: string;
  type: 'main' | 'sub';
  token: string;
  client: DeviceClient;
  /** The last close the device saw and its final failure, if any: for the report when it does not come back. */
  lastClose?: number;
  failure?: string;
}

export interface Recording {
  shops: string[];
  mainsOf: Map<string, string[]>;
  notifies: NotifyRecord[];
  /** `<shop>/<client_id>` → message ids the device was handed (each once: the client deduplicates). */
  received: Map<string, Set<string>>;
  /** Arrival time of every first receipt, to tell what arrived during a fault. */
  receivedAt: number[];
  /** Close codes the devices saw, for the report. */
  closes: Map<number, number>;
  logins: number;
}

const CONNECT_CONCURRENCY = 100;
/** Notifies wait this long for an answer: the back office and a POS keep retrying through a restart. */
const ANSWER_DEADLINE_MS = 120_000;

export function deviceKey(shop: string, clientId: string): string {
  return `${shop}/${clientId}`;
}

export class Load {
  readonly recording: Recording;
  readonly devices: Device[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly byReqId = new Map<string, NotifyRecord>();
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;

  private constructor(readonly options: LoadOptions) {
    this.recording = {
      shops: [],
      mainsOf: new Map(),
      notifies: [],
      received: new Map(),
      receivedAt: [],
      closes: new Map(),
      logins: 0,
    };
  }

  /** Registers the devices and logs every one of them in; resolves when all are logged in. */
  static async connect(ctx: TestContext, options: LoadOptions): Promise<Load> {
    const load = new Load(options);
    const plans: Array<Omit<Device, 'token' | 'client'>> = [];
    for (let s = 0; s < options.shops; s++) {
      const shop = `${options.shopPrefix}-${s}`;
      load.recording.shops.push(shop);
      const mains = Array.from({ length: options.mainsPerShop }, (_, m) => `m${m}`);
      load.recording.mainsOf.set(shop, mains);
      for (const clientId of mains) plans.push({ shop, clientId, type: 'main' });
      for (let w = 0; w < options.subsPerShop; w++) plans.push({ shop, clientId: `w${w}`, type: 'sub' });
    }
    for (let i = 0; i < plans.length; i += CONNECT_CONCURRENCY) {
      await Promise.all(
        plans.slice(i, i + CONNECT_CONCURRENCY).map(async (plan) => {
          const token = await registerDevice(ctx, plan.shop, plan.clientId, plan.type);
          const device = { ...plan, token } as Device; // its client is set on the next line
          device.client = load.clientFor(device, token);
          load.devices.push(device);
          await device.client.connect();
        }),
      );
    }
    return load;
  }

  get subs(): Device[] {
    return this.devices.filter((d) => d.type === 'sub');
  }

  get mains(): Device[] {
    return this.devices.filter((d) => d.type === 'main');
  }

  /** Starts notifying at the configured rates. */
  start(): void {
    const startedAt = Date.now();
    let wsSent = 0;
    let httpSent = 0;
    const subs = this.subs;
    const httpRate = this.options.apiUrl ? (this.options.httpNotifiesPerS ?? 0) : 0;
    this.timer = setInterval(() => {
      const elapsedS = (Date.now() - startedAt) / 1000;
      while (wsSent < Math.floor(elapsedS * this.options.notifiesPerS)) {
        this.notifyOverSocket(subs[wsSent % subs.length]!);
        wsSent++;
      }
      while (httpSent < Math.floor(elapsedS * httpRate)) {
        this.track(this.notifyOverHttp(subs[httpSent % subs.length]!));
        httpSent++;
      }
    }, 10);
  }

  /** Stops sending; resolves once every notify sent has a final outcome. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Closes every device (no logout: the sockets just go). */
  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.devices.map((d) => d.client.close()));
  }

  /** Takes a device off the load: its client closes (no logout) and stays closed until reconnect(). */
  async disconnect(device: Device): Promise<void> {
    await device.client.close();
  }

  /** A fresh client for the device (same token, same records), logged in. */
  async reconnect(device: Device): Promise<void> {
    device.client = this.clientFor(device, device.token);
    await device.client.connect();
  }

  /** Messages first received in [fromMs, toMs). */
  receivedBetween(fromMs: number, toMs: number): number {
    return this.recording.receivedAt.filter((at) => at >= fromMs && at < toMs).length;
  }

  /** Devices not logged in right now, with why, for a failure message. */
  notReady(): string {
    const waiting = this.devices.filter((d) => !d.client.isReady);
    const sample = waiting
      .slice(0, 5)
      .map((d) => `${d.shop}/${d.clientId} last close ${d.lastClose ?? '-'} ${d.failure ?? ''}`);
    return `${waiting.length} of ${this.devices.length} not logged in: ${sample.join('; ')}`;
  }

  /** One line for the report. */
  summary(): string {
    const n = this.recording.notifies;
    const count = (outcome: NotifyRecord['outcome']) => n.filter((r) => r.outcome === outcome).length;
    const received = [...this.recording.received.values()].reduce((sum, set) => sum + set.size, 0);
    const closes = [...this.recording.closes].map(([code, times]) => `${code}×${times}`).join(' ');
    return (
      `notifies sent ${n.length} (ws ${n.filter((r) => r.via === 'ws').length}, http ${n.filter((r) => r.via === 'http').length}): ` +
      `ok ${count('ok')}, refused ${count('refused')}, unknown ${count('unknown')}, pending ${count('pending')}; ` +
      `503 replies ${n.reduce((sum, r) => sum + r.replies.filter((x) => x.code === 503).length, 0)}; ` +
      `messages received ${received}; logins ${this.recording.logins}; closes seen ${closes || 'none'}`
    );
  }

  private clientFor(device: Device, token: string): DeviceClient {
    const client = new DeviceClient({
      url: this.options.url,
      token,
      backoff: { baseMs: 100, maxMs: 1000 },
      notifyTimeoutMs: ANSWER_DEADLINE_MS,
      keepFrames: 0,
    });
    const key = deviceKey(device.shop, device.clientId);
    const received = this.recording.received.get(key) ?? new Set<string>();
    this.recording.received.set(key, received);
    client.on('close', ({ code }) => {
      device.lastClose = code;
    });
    client.on('error', (err) => {
      if (isClientError(err)) device.failure = `${err.kind} ${err.code ?? ''} ${err.message}`;
    });
    client.on('message', (frame: MessageFrame) => {
      if (received.has(frame.id)) return; // the client already drops repeats; this guards the count
      received.add(frame.id);
      this.recording.receivedAt.push(Date.now());
    });
    client.on('login', () => {
      this.recording.logins++;
    });
    client.on('close', ({ code }) =>
      this.recording.closes.set(code, (this.recording.closes.get(code) ?? 0) + 1),
    );
    client.on('reply', (reply) => {
      if (reply.op !== 'notify' || reply.req_id === undefined) return;
      const record = this.byReqId.get(reply.req_id);
      const eventId = typeof reply.data?.event_id === 'string' ? reply.data.event_id : undefined;
      record?.replies.push({ code: reply.code, at: Date.now(), ...(eventId ? { event_id: eventId } : {}) });
    });
    return client;
  }

  private record(device: Device, via: NotifyRecord['via']): NotifyRecord {
    const n = this.sequence++;
    const record: NotifyRecord = {
      shop: device.shop,
      from: device.clientId,
      req_id: `${this.options.shopPrefix}-${via}-${n}`,
      via,
      sentAt: Date.now(),
      replies: [],
      outcome: 'pending',
    };
    this.recording.notifies.push(record);
    this.byReqId.set(record.req_id, record);
    return record;
  }

  /** One notify from a sub over its socket, recorded like the steady ones; `extra` goes into its data. */
  notifyOverSocket(device: Device, extra: Record<string, unknown> = {}): void {
    const record = this.record(device, 'ws');
    const n = this.recording.notifies.length;
    this.track(
      device.client
        .notify({
          req_id: record.req_id,
          table_id: n % 40,
          type: 'add_dish',
          data: { n, dish: 'noodles', ...extra },
          user_info: { waiter: device.clientId },
        })
        .then(
          (result) => {
            record.outcome = 'ok';
            record.event_id = result.event_id;
          },
          (err: unknown) => {
            const isRefusal = isClientError(err) && err.kind === 'REFUSED';
            record.outcome = isRefusal ? 'refused' : 'unknown';
            record.error = err instanceof Error ? err.message : String(err);
          },
        ),
    );
  }

  /** The back office's notify for a sub: retried with the same Idempotency-Key until an answer that is final. */
  private async notifyOverHttp(device: Device): Promise<void> {
    const record = this.record(device, 'http');
    const deadline = record.sentAt + ANSWER_DEADLINE_MS;
    const body = JSON.stringify({
      from_client_id: device.clientId,
      table_id: `T${this.recording.notifies.length % 40}`,
      type: 'add_dish',
      data: { dish: 'dumplings', via: 'http' },
    });
    let waitMs = 50;
    while (Date.now() < deadline) {
      let status: number;
      let answer: { event_id?: string; error?: { message?: string } } = {};
      try {
        const response = await fetch(`${this.options.apiUrl}/v1/shops/${device.shop}/notify`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.options.apiKey ?? 'test-key'}`,
            'content-type': 'application/json',
            'idempotency-key': record.req_id,
          },
          body,
          signal: AbortSignal.timeout(5_000),
        });
        status = response.status;
        answer = (await response.json().catch(() => ({}))) as typeof answer;
      } catch (err) {
        // Connection refused or cut while the api is down: the outcome is unknown, so ask again, same key.
        record.error = err instanceof Error ? err.message : String(err);
        status = 0;
      }
      record.replies.push({
        code: status,
        at: Date.now(),
        ...(answer.event_id ? { event_id: answer.event_id } : {}),
      });
      if (status === 202) {
        record.outcome = 'ok';
        record.event_id = answer.event_id;
        return;
      }
      if (status >= 400 && status < 500) {
        record.outcome = 'refused';
        record.error = answer.error?.message ?? `HTTP ${status}`;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(waitMs * 2, 500);
    }
    record.outcome = 'unknown';
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    work.finally(() => this.inFlight.delete(work));
  }
}
