// What the dispatcher and the api send an edge over its pub/sub channel (Keys.edgeChannel). Pub/sub is at most
// once; deliveries are made reliable by the dispatcher's retries, closes by the registry checks at notify.

export type EdgeCommand =
  /** Push already-serialised frames to one connection, in order. */
  | { kind: 'deliver'; conn_id: string; frames: string[] }
  /** Close one connection with a close code (4403 revoked, 4409 replaced, 4000 operator). */
  | { kind: 'close'; conn_id: string; code: number; reason: string };

export function encodeEdgeCommand(command: EdgeCommand): string {
  return JSON.stringify(command);
}

export function decodeEdgeCommand(text: string): EdgeCommand | null {
  try {
    const value = JSON.parse(text) as EdgeCommand;
    if (value.kind === 'deliver' && typeof value.conn_id === 'string' && Array.isArray(value.frames))
      return value;
    if (value.kind === 'close' && typeof value.conn_id === 'string' && typeof value.code === 'number')
      return value;
    return null;
  } catch {
    return null;
  }
}
