// @ts-check
// Talking to the console's JSON endpoints (/console/api). The session is an HttpOnly cookie the page never
// sees; writes carry the X-Console-Request header the server asks of them (with SameSite=Strict, the CSRF lock).
// The shapes are those of libs/events/src/rest.ts and services/api/src/console; only what the page reads is typed.

/**
 * @typedef {{ client_id: string, type: 'main' | 'sub', online: boolean, revoked: boolean, legacy: boolean,
 *   registered_at: string, last_seen_at: string | null }} Device
 * @typedef {{ id: string, shop_id: string, table_id: string | number | null, type: string, title: string,
 *   status: number, data: object, user_info: object, from_client_id: string | null, to_client_id: string,
 *   state: 'pending' | 'delivered' | 'handled', attempts: number, created_at: string,
 *   delivered_at: string | null, delivered_via: 'ack' | 'socket-write' | null,
 *   handled_at: string | null, event_id: string,
 *   handled_by: { kind: 'device', client_id: string } | { kind: 'api' } | null }} Message
 * @typedef {{ conn_id: string, edge_id: string, shop_id: string, client_id: string, type: string,
 *   connected_at: string, remote_addr: string, legacy: boolean }} Connection
 */

/**
 * @template T
 * @typedef {{ items: T[], next_cursor: string | null }} Page
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  get isSignedOut() {
    return this.status === 401;
  }
}

/**
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path  under /console/api
 * @param {unknown} [body]
 * @returns {Promise<any>} the JSON answer, or null for 204
 */
export async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-console-request'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/console/api${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'the api did not answer');
  }
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = answer?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? response.statusText,
    );
  }
  return answer;
}

/**
 * Encodes one path segment (shop and client ids may hold `:` and `.`).
 * @param {string} segment
 */
export function seg(segment) {
  return encodeURIComponent(segment);
}
