// A scripted fetch for unit tests: records requests, answers with SSE streams whose chunks the
// test releases, and errors the body with an AbortError when the request's signal fires (as
// browsers do).
export interface Recorded {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
  signal?: AbortSignal;
}

export type Reply = (req: Recorded) => Response | Promise<Response>;

export class FakeFetch {
  readonly requests: Recorded[] = [];
  private replies: Reply[] = [];

  reply(r: Reply): this {
    this.replies.push(r);
    return this;
  }

  readonly fetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((init.headers ?? {}) as Record<string, string>)) headers[k.toLowerCase()] = v;
    const req: Recorded = {
      url,
      method: init.method ?? 'GET',
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      signal: init.signal ?? undefined,
    };
    this.requests.push(req);
    const next = this.replies.shift();
    if (!next) throw new Error(`unexpected request ${req.method} ${url}`);
    return next(req);
  };
}

export function sse(events: Array<[string, unknown]>): string {
  return events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
}

/** An SSE response whose chunks arrive when the test calls `push`; `close` ends it. */
export function liveStream(req: Recorded) {
  const enc = new TextEncoder();
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
    },
    cancel() {
      cancelled = true;
    },
  });
  req.signal?.addEventListener('abort', () => {
    try {
      ctl.error(new DOMException('The operation was aborted.', 'AbortError'));
    } catch {
      // already closed
    }
  });
  return {
    response: new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    push: (text: string) => ctl.enqueue(enc.encode(text)),
    close: () => ctl.close(),
    get cancelled() {
      return cancelled;
    },
  };
}

export function sseResponse(events: Array<[string, unknown]>): Response {
  return new Response(sse(events), { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export class MemoryStorage {
  readonly data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
  removeItem(k: string): void {
    this.data.delete(k);
  }
}

export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}
