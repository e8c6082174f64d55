// Requests to the backend through Argo CD's proxy extension. Argo CD authenticates the browser by
// its `argocd.token` cookie (same-origin fetch sends it) and needs the two application headers to
// check RBAC; it strips `/extensions/assistant` before forwarding. Under a sub-path install the path
// is `<rootpath>/extensions/assistant` (see extensionBase).
import { readSse } from './sse';
import { backendError, badResponse, errorFromResponse, networkError, streamCut, type UiError } from './errors';
import type { AppRef, ContextInfo, Conversation, EndEvent, ModelInfo, ResourceRef, StartEvent } from './types';

export const EXTENSION_BASE = '/extensions/assistant';

/** The minimum of `document` that `extensionBase` reads (a parameter so unit tests can pass one). */
export interface BaseDocument {
  baseURI: string;
  querySelector(selector: string): unknown;
}

/**
 * Where the proxy extension lives for this page. Argo CD served under a sub-path (`--rootpath /argocd`)
 * marks it with `<base href="/argocd/">` and loads everything relative to it (docs/upstream-facts.md,
 * Argo CD UI extensions), so the extension path is resolved against `document.baseURI`. Without a
 * `<base>` element, `baseURI` is the page's own URL (`/applications/ns/app`), which must not be used.
 */
export function extensionBase(doc: BaseDocument | undefined = globalThis.document): string {
  if (!doc || !doc.querySelector('base[href]')) return EXTENSION_BASE;
  try {
    return new URL(EXTENSION_BASE.slice(1), doc.baseURI).pathname;
  } catch {
    return EXTENSION_BASE;
  }
}

export type ChatEvent =
  | { type: 'start'; data: StartEvent }
  | { type: 'context'; data: ContextInfo }
  | { type: 'token'; text: string }
  | { type: 'end'; data: EndEvent };

export class AssistantFailure extends Error {
  constructor(readonly error: UiError) {
    super(error.message);
  }
}

export interface ChatRequest {
  question: string;
  conversationId?: string;
  resource?: ResourceRef;
  model?: string;
  /** what the panel read from Argo CD's API for this question (attachments.ts) */
  attachments?: unknown[];
}

type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export class AssistantClient {
  constructor(
    private readonly app: AppRef,
    private readonly fetchFn: FetchFn = (input, init) => fetch(input, init),
    private readonly base: string = extensionBase(),
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'Argocd-Application-Name': `${this.app.namespace}:${this.app.name}`,
      'Argocd-Project-Name': this.app.project,
      ...extra,
    };
  }

  private async request(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.base}${path}`, { credentials: 'same-origin', ...init });
    } catch (e) {
      if (isAbort(e)) throw e;
      throw new AssistantFailure(networkError());
    }
    if (!res.ok) throw new AssistantFailure(await errorFromResponse(res));
    return res;
  }

  private async json<T>(res: Response): Promise<T> {
    try {
      return (await res.json()) as T;
    } catch {
      throw new AssistantFailure(badResponse('not JSON'));
    }
  }

  /**
   * Ask a question; calls `onEvent` for each SSE event as it arrives. Resolves after `end`;
   * rejects with AssistantFailure on an `error` event, an HTTP error, or a stream that closes
   * without `end`; rejects with an AbortError when `signal` fires.
   */
  async chat(req: ChatRequest, onEvent: (ev: ChatEvent) => void, signal?: AbortSignal): Promise<EndEvent> {
    const body: Record<string, unknown> = { question: req.question };
    if (req.conversationId) body.conversation_id = req.conversationId;
    if (req.resource) body.resource = req.resource;
    if (req.model) body.model = req.model;
    if (req.attachments?.length) body.attachments = req.attachments;
    const res = await this.request('/v1/chat', {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
      body: JSON.stringify(body),
      signal,
    });
    if (!res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      throw new AssistantFailure(badResponse('not an event stream'));
    }
    try {
      for await (const msg of readSse(res.body)) {
        let data: unknown;
        try {
          data = JSON.parse(msg.data);
        } catch {
          throw new AssistantFailure(badResponse(`event "${msg.event}" is not JSON`));
        }
        const d = data as Record<string, unknown>;
        switch (msg.event) {
          case 'start':
            onEvent({ type: 'start', data: d as unknown as StartEvent });
            break;
          case 'context':
            onEvent({ type: 'context', data: d as unknown as ContextInfo });
            break;
          case 'token':
            if (typeof d.text === 'string') onEvent({ type: 'token', text: d.text });
            break;
          case 'end':
            onEvent({ type: 'end', data: d as unknown as EndEvent });
            return d as unknown as EndEvent;
          case 'error':
            throw new AssistantFailure(backendError(String(d.code ?? 'internal'), String(d.message ?? '')));
          default:
            // unknown events are from a newer backend: ignore them
            break;
        }
      }
    } catch (e) {
      if (e instanceof AssistantFailure || isAbort(e) || signal?.aborted) throw e;
      throw new AssistantFailure(streamCut());
    }
    throw new AssistantFailure(streamCut());
  }

  /** The stored turns, or null when the backend no longer knows the conversation. */
  async conversation(id: string, signal?: AbortSignal): Promise<Conversation | null> {
    try {
      const res = await this.request(`/v1/conversations/${encodeURIComponent(id)}`, {
        headers: this.headers({ Accept: 'application/json' }),
        signal,
      });
      return await this.json<Conversation>(res);
    } catch (e) {
      if (e instanceof AssistantFailure && e.error.code === 'conversation_not_found') return null;
      throw e;
    }
  }

  async deleteConversation(id: string): Promise<void> {
    try {
      await this.request(`/v1/conversations/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        headers: this.headers(),
      });
    } catch (e) {
      if (e instanceof AssistantFailure && e.error.code === 'conversation_not_found') return;
      throw e;
    }
  }

  async models(): Promise<ModelInfo[]> {
    const res = await this.request('/v1/models', { headers: this.headers({ Accept: 'application/json' }) });
    const body = await this.json<{ models?: ModelInfo[] }>(res);
    return Array.isArray(body.models) ? body.models.filter((m) => m && typeof m.id === 'string') : [];
  }
}

export function isAbort(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AbortError';
}
