import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssistantClient } from '../src/api';
import { conversationKey, subjectOf, type Application } from '../src/resource';
import { ChatSession } from '../src/session';
import { FakeFetch, jsonResponse, liveStream, MemoryStorage, sse, sseResponse, until } from './helpers';

const APP: Application = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Application',
  metadata: { name: 'guestbook', namespace: 'team-a' },
  spec: { project: 'payments' },
  status: {
    health: { status: 'Degraded' },
    sync: { status: 'Synced' },
    resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'web', name: 'ui', status: 'OutOfSync', health: { status: 'Degraded' } }],
  },
};
const DEPLOY = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'ui', namespace: 'web' } };
const CONTEXT = { items: [{ kind: 'manifest', ref: 'apps/Deployment web/ui', tokens: 120, truncated: false, redactions: 2 }], tokens_total: 120, budget: 12000 };

function setup(resource: unknown = DEPLOY, storage = new MemoryStorage()) {
  const fake = new FakeFetch();
  const subject = subjectOf(resource as never, APP);
  const session = new ChatSession(subject, new AssistantClient(subject.app, fake.fetch), storage);
  return { fake, session, storage, subject };
}

test('a question is POSTed through the extension path with the Argo CD headers and the resource', async () => {
  const { fake, session } = setup();
  fake.reply(() =>
    sseResponse([
      ['start', { conversation_id: 'c1', provider: 'responses', model: 'm' }],
      ['context', CONTEXT],
      ['token', { text: 'Hello ' }],
      ['token', { text: '**world**' }],
      ['end', { conversation_id: 'c1b', usage: {}, elapsed_ms: 1200 }],
    ]),
  );
  await session.ask('  Why is this Degraded?  ');
  const [req] = fake.requests;
  assert.equal(req.url, '/extensions/assistant/v1/chat');
  assert.equal(req.method, 'POST');
  assert.equal(req.headers['argocd-application-name'], 'team-a:guestbook');
  assert.equal(req.headers['argocd-project-name'], 'payments');
  assert.deepEqual(req.body, {
    question: 'Why is this Degraded?',
    resource: { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'web', name: 'ui' },
  });
  const s = session.getState();
  assert.equal(s.busy, false);
  assert.equal(s.turns.length, 1);
  assert.equal(s.turns[0].answer, 'Hello **world**');
  assert.equal(s.turns[0].status, 'done');
  assert.deepEqual(s.turns[0].context, CONTEXT);
  assert.equal(s.conversationId, 'c1b', 'the id from `end` wins');
});

test('the follow-up carries the latest conversation id and it is kept in storage', async () => {
  const { fake, session, storage, subject } = setup();
  fake.reply(() => sseResponse([['start', { conversation_id: 'c1' }], ['token', { text: 'a' }], ['end', { conversation_id: 'c2' }]]));
  fake.reply(() => sseResponse([['start', { conversation_id: 'c2' }], ['token', { text: 'b' }], ['end', { conversation_id: 'c3' }]]));
  await session.ask('first');
  await session.ask('second');
  assert.equal((fake.requests[1].body as { conversation_id: string }).conversation_id, 'c2');
  assert.equal(storage.getItem(conversationKey(subject)), 'c3');
  assert.deepEqual(
    session.getState().turns.map((t) => [t.question, t.answer]),
    [
      ['first', 'a'],
      ['second', 'b'],
    ],
  );
});

test('the application node sends no resource', async () => {
  const { fake, session } = setup(APP);
  fake.reply(() => sseResponse([['end', { conversation_id: 'c' }]]));
  await session.ask('q');
  assert.deepEqual(fake.requests[0].body, { question: 'q' });
});

test('tokens are visible while streaming; Stop aborts the request and keeps the partial answer', async () => {
  const { fake, session, storage, subject } = setup();
  let live!: ReturnType<typeof liveStream>;
  fake.reply((req) => {
    live = liveStream(req);
    return live.response;
  });
  const done = session.ask('long answer please');
  await until(() => live !== undefined, 'request');
  live.push(sse([['start', { conversation_id: 'c9' }], ['token', { text: 'partial' }]]));
  await until(() => session.getState().turns[0]?.answer === 'partial', 'first token');
  assert.equal(session.getState().busy, true);
  assert.equal(session.getState().turns[0].status, 'streaming');
  session.stop();
  await done;
  assert.equal(fake.requests[0].signal?.aborted, true);
  const t = session.getState().turns[0];
  assert.equal(t.status, 'stopped');
  assert.equal(t.answer, 'partial');
  assert.equal(session.getState().busy, false);
  assert.equal(storage.getItem(conversationKey(subject)), 'c9', 'the id from `start` keeps the conversation going');
});

test('an error event mid-stream shows the message and can be retried', async () => {
  const { fake, session } = setup();
  fake.reply(() =>
    sseResponse([
      ['start', { conversation_id: 'c1' }],
      ['token', { text: 'half' }],
      ['error', { code: 'llama_stack_unavailable', message: 'connection refused' }],
    ]),
  );
  await session.ask('q');
  const t = session.getState().turns[0];
  assert.equal(t.status, 'error');
  assert.equal(t.error?.code, 'llama_stack_unavailable');
  assert.match(t.error!.message, /Llama Stack/);
  assert.equal(t.error?.retryable, true);
  fake.reply(() => sseResponse([['token', { text: 'full' }], ['end', { conversation_id: 'c1' }]]));
  await session.retry(t.id);
  const turns = session.getState().turns;
  assert.equal(turns.length, 1);
  assert.equal(turns[0].answer, 'full');
  assert.equal((fake.requests[1].body as { conversation_id: string }).conversation_id, 'c1');
});

test('a stream that closes without `end` is an error, not a silent success', async () => {
  const { fake, session } = setup();
  fake.reply(() => sseResponse([['start', { conversation_id: 'c1' }], ['token', { text: 'cut' }]]));
  await session.ask('q');
  assert.equal(session.getState().turns[0].status, 'error');
  assert.equal(session.getState().turns[0].error?.code, 'stream_cut');
});

const HTTP_CASES: Array<[string, () => Response, string, RegExp, boolean]> = [
  ['Argo CD 401 (no extensions permission)', () => new Response('Unauthorized extension request', { status: 401 }), 'argocd_401', /extensions, invoke, assistant/, true],
  ['Argo CD 403', () => new Response('permission denied', { status: 403 }), 'argocd_403', /extensions, invoke, assistant/, true],
  ['Argo CD login: no cookie', () => new Response('Auth cookie not found\n', { status: 400 }), 'argocd_session', /session has ended/, true],
  ['Argo CD login: invalid token', () => new Response('Invalid token\n', { status: 401 }), 'argocd_session', /session has ended/, true],
  ['Argo CD login: invalid session', () => new Response('Invalid session\n', { status: 401 }), 'argocd_session', /session has ended/, true],
  ['Argo CD 502 (backend down)', () => new Response('Bad Gateway', { status: 502 }), 'argocd_502', /not reachable/, true],
  ['Argo CD 404', () => new Response('not found', { status: 404 }), 'argocd_404', /proxy extension/, false],
  ['backend 401', () => jsonResponse(401, { error: { code: 'unauthenticated', message: 'bad secret' } }), 'unauthenticated', /shared secret/, true],
  ['backend 422', () => jsonResponse(422, { error: { code: 'question_too_long', message: 'max 16000 characters' } }), 'question_too_long', /too long/, false],
  ['backend 429', () => jsonResponse(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '7' }), 'rate_limited', /7 s/, true],
  ['backend 403', () => jsonResponse(403, { error: { code: 'resource_not_in_application', message: 'no' } }), 'resource_not_in_application', /does not belong/, false],
  ['backend 504', () => jsonResponse(504, { error: { code: 'llama_stack_timeout', message: 't' } }), 'llama_stack_timeout', /too long to answer/, true],
  ['unknown backend code', () => jsonResponse(500, { error: { code: 'brand_new', message: 'Something new happened' } }), 'brand_new', /Something new happened/, true],
];

for (const [name, res, code, message, retryable] of HTTP_CASES) {
  test(`HTTP errors become human messages: ${name}`, async () => {
    const { fake, session } = setup();
    fake.reply(res);
    await session.ask('q');
    const t = session.getState().turns[0];
    assert.equal(t.status, 'error');
    assert.equal(t.error?.code, code);
    assert.match(t.error!.message, message);
    assert.equal(t.error?.retryable, retryable);
  });
}

test('a network failure is reported, not thrown', async () => {
  const { fake, session } = setup();
  fake.reply(() => Promise.reject(new TypeError('Failed to fetch')));
  await session.ask('q');
  assert.equal(session.getState().turns[0].error?.code, 'network');
});

test('restore fetches the stored turns once', async () => {
  const storage = new MemoryStorage();
  const first = setup(DEPLOY, storage);
  storage.setItem(conversationKey(first.subject), 'c7');
  const { fake, session } = setup(DEPLOY, storage);
  fake.reply(() => jsonResponse(200, { conversation_id: 'c7', turns: [{ question: 'q1', answer: 'a1' }, { question: 'q2', answer: 'a2' }] }));
  await session.restore();
  await session.restore();
  assert.equal(fake.requests.length, 1);
  assert.equal(fake.requests[0].url, '/extensions/assistant/v1/conversations/c7');
  assert.equal(fake.requests[0].headers['argocd-application-name'], 'team-a:guestbook');
  assert.deepEqual(
    session.getState().turns.map((t) => [t.question, t.answer, t.status]),
    [
      ['q1', 'a1', 'done'],
      ['q2', 'a2', 'done'],
    ],
  );
});

test('a conversation the backend forgot is dropped from storage', async () => {
  const storage = new MemoryStorage();
  const { fake, session, subject } = setup(DEPLOY, storage);
  storage.setItem(conversationKey(subject), 'gone');
  const again = setup(DEPLOY, storage);
  again.fake.reply(() => jsonResponse(404, { error: { code: 'conversation_not_found', message: 'no' } }));
  await again.session.restore();
  assert.equal(storage.getItem(conversationKey(subject)), null);
  assert.equal(again.session.getState().conversationId, undefined);
  assert.equal(again.session.getState().restoreError, undefined);
  assert.equal(fake.requests.length + session.getState().turns.length, 0);
});

test('restore failure (backend down) is shown and can be retried', async () => {
  const storage = new MemoryStorage();
  const { fake, session, subject } = setup(DEPLOY, storage);
  storage.setItem(conversationKey(subject), 'c1');
  const s2 = setup(DEPLOY, storage);
  s2.fake.reply(() => new Response('Bad Gateway', { status: 502 }));
  await s2.session.restore();
  assert.equal(s2.session.getState().restoreError?.code, 'argocd_502');
  s2.fake.reply(() => jsonResponse(200, { conversation_id: 'c1', turns: [{ question: 'q', answer: 'a' }] }));
  await s2.session.restore(true);
  assert.equal(s2.session.getState().restoreError, undefined);
  assert.equal(s2.session.getState().turns.length, 1);
  assert.equal(fake.requests.length + session.getState().turns.length, 0);
});

test('new conversation forgets the id here and deletes it in the backend', async () => {
  const { fake, session, storage, subject } = setup();
  fake.reply(() => sseResponse([['end', { conversation_id: 'c5' }]]));
  await session.ask('q');
  fake.reply(() => new Response(null, { status: 204 }));
  await session.newConversation();
  assert.equal(fake.requests[1].method, 'DELETE');
  assert.equal(fake.requests[1].url, '/extensions/assistant/v1/conversations/c5');
  assert.equal(storage.getItem(conversationKey(subject)), null);
  assert.deepEqual(session.getState().turns, []);
});

test('models: the chosen model is sent; a failing model list leaves no picker', async () => {
  const { fake, session } = setup();
  fake.reply(() => jsonResponse(200, { models: [{ id: 'a', default: true }, { id: 'b' }] }));
  await session.loadModels();
  assert.deepEqual(session.getState().models.map((m) => m.id), ['a', 'b']);
  session.setModel('b');
  fake.reply(() => sseResponse([['end', { conversation_id: 'c' }]]));
  await session.ask('q');
  assert.equal((fake.requests[1].body as { model: string }).model, 'b');
  const other = setup();
  other.fake.reply(() => new Response('Bad Gateway', { status: 502 }));
  await other.session.loadModels();
  assert.deepEqual(other.session.getState().models, []);
});

test('sessions for different resources of one app use different storage keys', () => {
  const a = subjectOf(DEPLOY, APP);
  const b = subjectOf({ ...DEPLOY, metadata: { name: 'api', namespace: 'web' } }, APP);
  const c = subjectOf(APP, APP);
  assert.equal(new Set([conversationKey(a), conversationKey(b), conversationKey(c)]).size, 3);
});
