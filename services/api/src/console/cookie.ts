// ◇ The console's session cookie: reading it from a Cookie header and writing its Set-Cookie. Pure: no I/O.
// HttpOnly keeps it from the page's scripts; SameSite=Strict keeps other sites from sending it; Path=/console
// keeps it off /v1, which takes bearer keys only.

export const SESSION_COOKIE = 'console_session';
const COOKIE_PATH = '/console';

/** The value of one cookie in a Cookie header, or undefined. Only the first of repeated names counts. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for a new session; `isSecure` when the page was served over https. */
export function sessionCookie(value: string, maxAgeS: number, isSecure: boolean): string {
  const parts = [
    `${SESSION_COOKIE}=${value}`,
    `Path=${COOKIE_PATH}`,
    `Max-Age=${maxAgeS}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (isSecure) parts.push('Secure');
  return parts.join('; ');
}

/** Set-Cookie that makes the browser forget the session. */
export function clearedSessionCookie(isSecure: boolean): string {
  return sessionCookie('', 0, isSecure);
}
