// Reading `text/event-stream` from fetch's body with eventsource-parser (the WHATWG "event stream
// interpretation" rules): bytes arrive in arbitrary chunks, so lines, fields and even UTF-8
// sequences may be split anywhere. Comments (`: ping`) are heartbeats and never surface.
import { createParser, type EventSourceParser } from 'eventsource-parser';

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Feed decoded text with `push`; it returns every message the text completed. */
export class SseParser {
  private done: SseMessage[] = [];
  private readonly parser: EventSourceParser = createParser({
    // Browsers call an unnamed event `message`; the parser leaves it undefined.
    onEvent: (m) => this.done.push({ event: m.event || 'message', data: m.data, id: m.id }),
  });

  push(text: string): SseMessage[] {
    this.parser.feed(text);
    const out = this.done;
    this.done = [];
    return out;
  }
}

/** Read a fetch body as SSE messages, decoding UTF-8 across chunk boundaries. A trailing message
 * without its blank line is incomplete and dropped (per spec). */
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
  } finally {
    // A consumer that stops early (Stop button, unmount) must close the connection, so the
    // backend sees the disconnect and stops paying for tokens nobody reads.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
