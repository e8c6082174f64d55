// The three reads of Argo CD's own API the panel makes before a question, with the user's session
// (same origin, the `argocd.token` cookie), so Argo CD's RBAC decides what is seen — `logs, get`
// included (docs/upstream-facts.md, "Argo CD API"). Shapes as Argo CD's server/application and
// ui/src/app/shared/services/applications-service.ts define them:
// - GET api/v1/applications/{name}/managed-resources?appNamespace=&group=&kind=&namespace=&name=
//   -> {items: [{group, kind, namespace, name, targetState, liveState, normalizedLiveState,
//      predictedLiveState, ...}]}, the states as JSON text;
// - GET api/v1/applications/{name}/revisions/{revision}/metadata?appNamespace=[&sourceIndex=]
//   -> {author, date, message, tags};
// - GET api/v1/applications/{name}/logs?appNamespace=&namespace=&podName=&container=&tailLines=&previous=&follow=false
//   -> newline-delimited {"result": {content, timeStampStr, podName, last}} (grpc-gateway stream);
//   403 when the role lacks `logs, get` (Argo CD >= 3.0 enforces it).
// Every read has its own timeout; a failure is a value, never an exception.
import type { AppRef } from './types';
import { resolveUrl } from './urls';

type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export type Failure = 'forbidden' | 'timeout' | 'failed';
export type Fetched<T> = { ok: true; value: T } | { ok: false; reason: Failure; status?: number };

export interface ManagedResource {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  targetState?: string;
  liveState?: string;
  normalizedLiveState?: string;
  predictedLiveState?: string;
}

export interface RevisionMetadata {
  author?: string;
  date?: string;
  message?: string;
  tags?: string[];
}

export interface LogQuery {
  namespace: string;
  podName: string;
  container?: string;
  previous: boolean;
  tailLines: number;
  maxChars: number;
}

export const DEFAULT_TIMEOUT_MS = 2500;

export class ArgoCDApi {
  constructor(
    private readonly app: AppRef,
    private readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
    private readonly fetchFn: FetchFn = (input, init) => fetch(input, init),
  ) {}

  private url(path: string, query: Record<string, string | undefined>): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
    return `${resolveUrl(`api/v1/applications/${encodeURIComponent(this.app.name)}${path}`)}?${params.toString()}`;
  }

  /** GET with this read's own deadline (and the turn's signal); the body read is inside the deadline. */
  private async get<T>(url: string, read: (res: Response) => Promise<T>, signal?: AbortSignal): Promise<Fetched<T>> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    try {
      const res = await this.fetchFn(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, signal: controller.signal });
      if (res.status === 403) return { ok: false, reason: 'forbidden', status: 403 };
      if (!res.ok) return { ok: false, reason: 'failed', status: res.status };
      return { ok: true, value: await read(res) };
    } catch {
      return { ok: false, reason: timedOut ? 'timeout' : 'failed' };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  managedResources(
    filter: { group?: string; kind?: string; namespace?: string; name?: string } = {},
    signal?: AbortSignal,
  ): Promise<Fetched<ManagedResource[]>> {
    const url = this.url('/managed-resources', { appNamespace: this.app.namespace, ...filter });
    return this.get(url, async (res) => {
      const body = (await res.json()) as { items?: ManagedResource[] };
      return Array.isArray(body.items) ? body.items : [];
    }, signal);
  }

  revisionMetadata(revision: string, sourceIndex: number | undefined, signal?: AbortSignal): Promise<Fetched<RevisionMetadata>> {
    const url = this.url(`/revisions/${encodeURIComponent(revision)}/metadata`, {
      appNamespace: this.app.namespace,
      sourceIndex: sourceIndex === undefined ? undefined : String(sourceIndex),
    });
    return this.get(url, async (res) => (await res.json()) as RevisionMetadata, signal);
  }

  logs(q: LogQuery, signal?: AbortSignal): Promise<Fetched<string>> {
    const url = this.url('/logs', {
      appNamespace: this.app.namespace,
      namespace: q.namespace,
      podName: q.podName,
      container: q.container,
      tailLines: String(q.tailLines),
      previous: String(q.previous),
      follow: 'false',
    });
    return this.get(url, (res) => readLogLines(res, q.maxChars), signal);
  }
}

/** The `content` of each `{"result": ...}` line until `last`, keeping at most `maxChars` (the newest). */
async function readLogLines(res: Response, maxChars: number): Promise<string> {
  const text = await res.text();
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let entry: { result?: { content?: unknown; last?: unknown }; error?: unknown };
    try {
      entry = JSON.parse(raw) as typeof entry;
    } catch {
      continue;
    }
    if (entry.error) throw new Error('log stream failed');
    if (!entry.result || entry.result.last === true) continue;
    if (typeof entry.result.content === 'string') lines.push(entry.result.content);
  }
  let joined = lines.join('\n');
  if (joined.length > maxChars) joined = joined.slice(joined.length - maxChars);
  return joined;
}
