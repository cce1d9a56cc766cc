// What the append scripts, the dispatcher and the api send an edge over its channel of a shop's shard
// (Keys.edgeChannel, SPUBLISH). Pub/sub is at most once; deliveries are made reliable by the receiver count (a push
// nobody heard is retried) and the edge's backlog re-run after an interrupted subscription, closes by the registry
// checks at notify.
//
// A delivery is written as lines, `deliver <conn_id>` then one frame per line, not as JSON: its frames are
// JSON texts already, and wrapping them in a JSON command escaped every quote twice and made the edge parse
// each message twice. Serialised JSON never holds a raw newline, so a line is a frame. Closes are rare and stay
// JSON objects.

export type EdgeCommand =
  /** Push already-serialised frames to one connection, in order. */
  | { kind: 'deliver'; conn_id: string; frames: string[] }
  /** Close one connection with a close code (4403 revoked, 4409 replaced, 4000 operator). */
  | { kind: 'close'; conn_id: string; code: number; reason: string };

const DELIVER = 'deliver ';

export function encodeEdgeCommand(command: EdgeCommand): string {
  if (command.kind === 'deliver' && isLineSafe(command)) {
    return `${DELIVER}${command.conn_id}\n${command.frames.join('\n')}`;
  }
  return JSON.stringify(command);
}

/**
 * A frame with a newline (never made by JSON.stringify), an odd connection id or no frame at all (which the
 * line form cannot tell from one empty frame) falls back to the JSON form.
 */
function isLineSafe(command: { conn_id: string; frames: string[] }): boolean {
  if (command.frames.length === 0 || command.conn_id === '') return false;
  if (command.conn_id.includes('\n') || command.conn_id.includes(' ')) return false;
  return command.frames.every((frame) => !frame.includes('\n'));
}

export function decodeEdgeCommand(text: string): EdgeCommand | null {
  if (text.startsWith(DELIVER)) {
    const lines = text.split('\n');
    const connId = lines[0]!.slice(DELIVER.length);
    if (connId === '' || lines.length < 2) return null;
    return { kind: 'deliver', conn_id: connId, frames: lines.slice(1) };
  }
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
