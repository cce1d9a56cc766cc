// Frames a device sends, for the tests that speak the WebSocket protocol (the shapes are libs/events' frames.ts).

/** A waiter's add_dish for table 7, as a sub device sends it; `extra` adds or replaces fields. */
export function notifyFrame(reqId: string, extra: Record<string, unknown> = {}) {
  return {
    op: 'notify',
    req_id: reqId,
    table_id: 7,
    type: 'add_dish',
    status: 1,
    data: { dish: 'noodles' },
    user_info: { name: 'A' },
    ...extra,
  };
}
