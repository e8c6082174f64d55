// Incremental parser for `text/event-stream` (the WHATWG "event stream interpretation" rules):
// bytes arrive in arbitrary chunks from fetch's ReadableStream, so lines, fields and even UTF-8
// sequences may be split anywhere. Comments (`: ping`) are heartbeats and never surface.

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private buffer = '';
  private eventType = '';
  private dataLines: string[] = [];
  private lastId: string | undefined;
  // A chunk ending in "\r" may be the first half of "\r\n": remember it so the "\n" that opens
  // the next chunk is not read as a second (empty, dispatching) line.
  private pendingCR = false;

  /** Feed decoded text; returns every message completed by it. */
  push(text: string): SseMessage[] {
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1);
    this.pendingCR = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      if (m[0] === '\r' && m.index === this.buffer.length - 1) {
        this.pendingCR = true;
      }
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  /** End of stream: a trailing message without its blank line is incomplete and dropped (per spec). */
  end(): SseMessage[] {
    this.buffer = '';
    this.dataLines = [];
    this.eventType = '';
    return [];
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.dataLines.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields are ignored: the client does not auto-reconnect.
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const hadData = this.dataLines.length > 0;
    const msg: SseMessage = {
      event: this.eventType || 'message',
      data: this.dataLines.join('\n'),
      id: this.lastId,
    };
    this.dataLines = [];
    this.eventType = '';
    return hadData ? msg : null;
  }
}

/** Read a fetch body as SSE messages, decoding UTF-8 across chunk boundaries. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      for (const msg of parser.push(decoder.decode(value, { stream: true }))) yield msg;
    }
    for (const msg of parser.push(decoder.decode())) yield msg;
    parser.end();
  } finally {
    // A consumer that stops early (Stop button, unmount) must close the connection, so the
    // backend sees the disconnect and stops paying for tokens nobody reads.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
