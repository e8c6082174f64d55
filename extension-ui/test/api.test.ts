import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssistantClient, EXTENSION_BASE, extensionBase, type BaseDocument } from '../src/api';

function page(url: string, baseHref: string | null): BaseDocument {
  // What a browser computes: baseURI is the <base href> resolved against the page URL, else the page URL.
  return {
    baseURI: baseHref === null ? url : new URL(baseHref, url).href,
    querySelector: (selector: string) => (selector === 'base[href]' && baseHref !== null ? {} : null),
  };
}

test('Argo CD at the root (<base href="/">) calls /extensions/assistant', () => {
  assert.equal(extensionBase(page('https://cd.example.com/applications/argocd/guestbook?resource=', '/')), EXTENSION_BASE);
});

test('Argo CD under --rootpath /argocd calls /argocd/extensions/assistant', () => {
  assert.equal(
    extensionBase(page('https://example.com/argocd/applications/argocd/guestbook', '/argocd/')),
    '/argocd/extensions/assistant',
  );
  assert.equal(extensionBase(page('https://example.com/a/b/applications/x', '/a/b/')), '/a/b/extensions/assistant');
});

test('without a <base> element the page URL is not used as the base', () => {
  assert.equal(extensionBase(page('https://cd.example.com/applications/argocd/guestbook', null)), EXTENSION_BASE);
  assert.equal(extensionBase(undefined), EXTENSION_BASE);
});

test('the client sends its requests under the base it was given', async () => {
  const seen: string[] = [];
  const fetchFn = async (input: string) => {
    seen.push(input);
    return new Response(JSON.stringify({ models: [] }), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const client = new AssistantClient({ namespace: 'argocd', name: 'guestbook', project: 'default' }, fetchFn, '/argocd/extensions/assistant');
  await client.models();
  assert.deepEqual(seen, ['/argocd/extensions/assistant/v1/models']);
});
