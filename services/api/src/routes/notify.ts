// Notifies over HTTP: on behalf of a registered device (a sub notifies the mains, a main broadcasts to the
// subs), and the back office's own broadcast. Both append NotifyRequested through the notify script, which fixes
// the recipients and the req_id record in one atomic step, and answer 202 once the event is durable.
import {
  BrokerError,
  compile,
  createEvent,
  type DeviceType,
  type EventData,
  isBrokerError,
  newEventId,
  type RegisteredDevice,
  ReqId,
  rest,
  unstorableReason,
} from '#events';
import { type ApiContext, checkedEvent, readRedis } from '../context';
import { defineRoute, type HeaderDoc, type Route, ShopPath } from '../route';

const IDEMPOTENCY_KEY: HeaderDoc = {
  name: 'Idempotency-Key',
  description:
    'The req_id when the body has none: a repeat within 24 h answers the first event, no second one. A 503 ' +
    'LOG_UNAVAILABLE leaves the outcome unknown: retry with the same req_id or key; without either, a retry ' +
    'may record the notify twice.',
  schema: ReqId,
};
const isReqId = compile(ReqId).is;

// SPEC §5.6: a 503 from the append leaves the outcome unknown (a stalled Redis may still apply the script), so the
// answer says whether a retry is safe: only a req_id makes a repeat answer the first event instead of a second.
const OUTCOME_UNKNOWN = 'event log unavailable: the outcome is unknown';
const RETRY_SAFELY = `${OUTCOME_UNKNOWN}; retry with the same req_id or Idempotency-Key, which records it once`;
const RETRY_UNSAFE = `${OUTCOME_UNKNOWN}; this request carried no req_id or Idempotency-Key, so retrying it may record it twice`;

type NotifyFields = Pick<
  EventData<'NotifyRequested'>,
  'from_client_id' | 'from_type' | 'audience' | 'table_id' | 'type' | 'status' | 'data' | 'user_info'
>;

export function notifyRoutes(ctx: ApiContext): Route[] {
  const notify = defineRoute({
    method: 'post',
    path: '/v1/shops/:shopId/notify',
    name: 'notify',
    summary:
      "Notifies on behalf of `from_client_id`, a registered device of the shop: a sub's id notifies the mains " +
      "(one message each), a main's id broadcasts to the subs. 422 when `from_client_id` is not a registered " +
      'device of the shop; 404 NO_MAIN_DEVICE when a sub notifies a shop without a main device.',
    params: ShopPath,
    body: rest.HttpNotifyBody,
    headers: [IDEMPOTENCY_KEY],
    success: { status: 202, description: 'recorded', schema: rest.Accepted },
    errors: ['UNPROCESSABLE', 'NO_MAIN_DEVICE', 'LOG_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      body: {
        from_client_id: 'waiter-1',
        req_id: 'r-20240501-0001',
        table_id: 12,
        type: 'add_dish',
        status: 0,
        data: { dish: 'noodles', qty: 2 },
        user_info: { name: 'Li' },
      },
      response: { event_id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V', req_id: 'r-20240501-0001' },
    },
    async run({ params, body, header }) {
      const senderType = await typeOfDevice(ctx, params.shopId, body.from_client_id);
      return appendNotify(ctx, params.shopId, reqIdOf(body.req_id, header('idempotency-key')), senderType, {
        from_client_id: body.from_client_id,
        from_type: senderType,
        audience: senderType === 'sub' ? 'mains' : 'subs',
        table_id: body.table_id,
        type: body.type,
        status: body.status ?? 0,
        data: body.data ?? {},
        user_info: body.user_info ?? {},
      });
    },
  });

  const broadcast = defineRoute({
    method: 'post',
    path: '/v1/shops/:shopId/broadcast',
    name: 'broadcast',
    summary: "The back office's broadcast to the shop's online sub devices (best effort, no ack).",
    params: ShopPath,
    body: rest.BroadcastBody,
    headers: [IDEMPOTENCY_KEY],
    success: { status: 202, description: 'recorded', schema: rest.Accepted },
    errors: ['LOG_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      body: { type: 'announcement', data: { text: 'kitchen closes at 22:00' } },
      response: { event_id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0W', req_id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0W' },
    },
    async run({ params, body, header }) {
      return appendNotify(ctx, params.shopId, reqIdOf(body.req_id, header('idempotency-key')), '', {
        from_client_id: null,
        from_type: 'api',
        audience: 'subs',
        table_id: body.table_id ?? null,
        type: body.type,
        status: body.status ?? 0,
        data: body.data,
        user_info: body.user_info ?? {},
      });
    },
  });

  return [notify, broadcast];
}

/** The body's req_id, else the Idempotency-Key header; both may be given only when they agree. */
function reqIdOf(fromBody: string | undefined, fromHeader: string | undefined): string | undefined {
  if (fromHeader === undefined) return fromBody;
  if (!isReqId(fromHeader)) throw new BrokerError('INVALID_INPUT', 'Idempotency-Key: 1 to 128 characters');
  if (fromBody !== undefined && fromBody !== fromHeader) {
    throw new BrokerError('INVALID_INPUT', 'req_id and Idempotency-Key differ');
  }
  return fromHeader;
}

/** The registered type of the sending device; UNPROCESSABLE when the shop has no such active device. */
async function typeOfDevice(ctx: ApiContext, shopId: string, clientId: string): Promise<DeviceType> {
  const entry = await readRedis(ctx.redis.hget(ctx.keys.devices(shopId), clientId));
  if (entry === null) {
    throw new BrokerError(
      'UNPROCESSABLE',
      `from_client_id ${clientId} is not a registered device of the shop`,
    );
  }
  return (JSON.parse(entry) as RegisteredDevice).type;
}

async function appendNotify(
  ctx: ApiContext,
  shopId: string,
  reqId: string | undefined,
  senderType: DeviceType | '',
  fields: NotifyFields,
) {
  const unstorable = unstorableReason(fields);
  if (unstorable !== null) throw new BrokerError('INVALID_INPUT', unstorable);
  const nowMs = ctx.nowMs();
  const id = newEventId(nowMs);
  // Without a req_id the request is not idempotent: the event id stands in as the event's req_id, and no record
  // is kept to match a repeat.
  const req_id = reqId ?? id;
  const event = checkedEvent(
    createEvent({
      type: 'NotifyRequested',
      shopId,
      source: 'api',
      nowMs,
      id,
      data: { req_id, recipients: [], ...fields },
    }),
  );
  try {
    const outcome = await ctx.eventLog.appendNotify(event, {
      tokenId: '',
      type: senderType,
      remember: reqId !== undefined,
    });
    return { status: 202, body: { event_id: outcome.eventId, req_id } };
  } catch (err) {
    if (isBrokerError(err) && err.code === 'LOG_UNAVAILABLE') {
      throw new BrokerError('LOG_UNAVAILABLE', reqId === undefined ? RETRY_UNSAFE : RETRY_SAFELY);
    }
    // Revoked (or re-registered with another type) between the registry read and the script: same as unknown.
    if (isBrokerError(err) && err.code === 'DEVICE_REVOKED') {
      throw new BrokerError(
        'UNPROCESSABLE',
        `from_client_id ${fields.from_client_id} is not a registered device`,
      );
    }
    throw err;
  }
}
