// Turn every failure (Argo CD's plain-text proxy errors, the backend's JSON errors, SSE `error`
// events, network failures) into one shape with a message a developer can act on.
import type { ErrorCode } from './types';

export interface UiError {
  /** backend code, or `argocd_<status>` / `network` / `bad_response` for failures before the backend */
  code: string;
  status?: number;
  message: string;
  /** the raw message (backend or Argo CD), shown as a detail when it adds something */
  detail?: string;
  retryable: boolean;
}

const PERMISSION_HINT =
  'Ask your Argo CD admin for the "extensions, invoke, assistant" permission on this application, or log in again if your session has expired.';

// Every code the backend can send (the generated ErrorCode union): a new code that has no words
// here fails the type check.
const BACKEND_MESSAGES: Record<ErrorCode, string> = {
  unauthenticated:
    'Argo CD reached the Assistant, but the Assistant did not accept its shared secret. Ask your Argo CD admin to check the extension\'s secret.',
  missing_header: 'The request lacked an Argo CD header the Assistant needs. Reload the page and try again.',
  bad_application_header: 'The Assistant could not read which application this is. Reload the page and try again.',
  bad_header: 'The Assistant rejected a request header. Reload the page and try again.',
  invalid_request: 'The Assistant could not read this request.',
  question_too_long: 'Your question is too long. Shorten it and send it again.',
  body_too_large: 'Your question is too long. Shorten it and send it again.',
  conversation_not_found: 'This conversation is no longer available. Start a new conversation.',
  application_not_found: 'The Assistant cannot find this application in the cluster.',
  resource_not_in_application: 'This resource does not belong to the application, so the Assistant will not look at it.',
  project_mismatch: 'The application\'s project does not match. Reload the page and try again.',
  unknown_model: 'The selected model is not offered any more. Pick another model.',
  rate_limited: 'You are asking too fast. Wait a moment and try again.',
  too_many_streams: 'You already have answers in progress. Wait for one to finish, or stop it, and try again.',
  request_timeout: 'The request reached the Assistant too slowly. Try again.',
  unsupported_media_type: 'The Assistant could not read this request. Reload the page and try again.',
  not_found: 'The Assistant does not know this request. Reload the page; if it persists, the Assistant backend may be older than this panel.',
  method_not_allowed: 'The Assistant does not know this request. Reload the page; if it persists, the Assistant backend may be older than this panel.',
  not_ready: 'The Assistant is starting or cannot reach its model service yet. Try again in a moment.',
  llama_stack_unavailable: 'The model service (Llama Stack) is not reachable right now. Try again in a moment.',
  llama_stack_timeout: 'The model took too long to answer. Try again.',
  llama_stack_error: 'The model service returned an error. Try again.',
  internal: 'The Assistant hit an internal error. Try again; if it persists, tell your Argo CD admin.',
};

const NOT_RETRYABLE = new Set([
  'question_too_long',
  'body_too_large',
  'invalid_request',
  'resource_not_in_application',
  'application_not_found',
  'argocd_404',
]);

function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(BACKEND_MESSAGES, code);
}

export function backendError(code: string, message: string, status?: number, retryAfter?: string | null): UiError {
  let text = (isErrorCode(code) ? BACKEND_MESSAGES[code] : undefined) ?? (message || 'The Assistant returned an error.');
  if (code === 'rate_limited' && retryAfter && /^\d+$/.test(retryAfter)) {
    text = `You are asking too fast. Try again in ${retryAfter} s.`;
  }
  return {
    code,
    status,
    message: text,
    detail: message && message !== text ? message : undefined,
    retryable: !NOT_RETRYABLE.has(code),
  };
}

/** Argo CD's own proxy answers in plain text before our backend is involved. */
export function argocdError(status: number, body: string): UiError {
  const detail = body.trim().slice(0, 300) || undefined;
  let message: string;
  // Argo CD's login middleware (util/session WithAuthMiddleware), not RBAC: asking for permission would mislead.
  if ((status === 400 && detail === 'Auth cookie not found') || (status === 401 && (detail === 'Invalid token' || detail === 'Invalid session'))) {
    return { code: 'argocd_session', status, message: 'Your Argo CD session has ended. Log in again, then retry.', detail, retryable: true };
  }
  switch (status) {
    case 401:
    case 403:
      message = `Argo CD did not allow this request. ${PERMISSION_HINT}`;
      break;
    case 404:
      message =
        'Argo CD does not know the "assistant" extension for this application. Ask your Argo CD admin to enable the proxy extension.';
      break;
    case 502:
    case 503:
    case 504:
      message = 'The Assistant backend is not reachable. Try again in a moment; if it persists, tell your Argo CD admin.';
      break;
    case 400:
      message = 'Argo CD rejected the request. Reload the page and try again.';
      break;
    default:
      message = `Argo CD answered with an unexpected error (HTTP ${status}).`;
  }
  return { code: `argocd_${status}`, status, message, detail, retryable: status !== 404 };
}

export function networkError(): UiError {
  return {
    code: 'network',
    message: 'Could not reach Argo CD. Check your connection and try again.',
    retryable: true,
  };
}

export function badResponse(what: string): UiError {
  return { code: 'bad_response', message: `The Assistant sent a response this panel cannot read (${what}).`, retryable: true };
}

export function streamCut(): UiError {
  return {
    code: 'stream_cut',
    message: 'The answer was cut off before it finished. Try again.',
    retryable: true,
  };
}

/** Read a non-2xx response: JSON `{"error": {code, message}}` from the backend, plain text from Argo CD. */
export async function errorFromResponse(res: Response): Promise<UiError> {
  let body = '';
  try {
    body = await res.text();
  } catch {
    // body unreadable: classify by status alone
  }
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json') || body.trimStart().startsWith('{')) {
    try {
      const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
      const err = parsed.error;
      if (err && typeof err.code === 'string') {
        return backendError(err.code, typeof err.message === 'string' ? err.message : '', res.status, res.headers.get('retry-after'));
      }
    } catch {
      // not our JSON: fall through to the proxy's plain text
    }
  }
  return argocdError(res.status, body);
}
