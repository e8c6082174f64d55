import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isApplicationSet, subjectOf, suggestions, type Application } from '../src/resource';

const APP: Application = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Application',
  metadata: { name: 'guestbook', namespace: 'argocd' },
  spec: { project: 'default' },
  status: {
    health: { status: 'Healthy' },
    sync: { status: 'OutOfSync' },
    resources: [
      { version: 'v1', kind: 'Service', namespace: 'web', name: 'ui', status: 'Synced', health: { status: 'Healthy' } },
      { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'web', name: 'ui', status: 'Synced', health: { status: 'Degraded' } },
    ],
  },
};

test('the application node (same object, or an equal copy) is about the Application', () => {
  for (const r of [APP, { ...APP }, undefined]) {
    const s = subjectOf(r, APP);
    assert.equal(s.resource, undefined);
    assert.equal(s.label, 'Application guestbook');
    assert.deepEqual(s.app, { namespace: 'argocd', name: 'guestbook', project: 'default' });
  }
});

test('a child Application (app of apps) is a resource, not the app itself', () => {
  const child = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'child', namespace: 'argocd' } };
  assert.deepEqual(subjectOf(child, APP).resource, { group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', namespace: 'argocd', name: 'child' });
});

test('core group resources have an empty group; state comes from the app status', () => {
  const s = subjectOf({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ui', namespace: 'web' } }, APP);
  assert.deepEqual(s.resource, { group: '', version: 'v1', kind: 'Service', namespace: 'web', name: 'ui' });
  assert.equal(s.health, 'Healthy');
  assert.equal(s.sync, 'Synced');
});

test('suggestions fit the state', () => {
  const deploy = subjectOf({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'ui', namespace: 'web' } }, APP);
  assert.deepEqual(suggestions(deploy), ['Why is this Degraded?', 'Explain this Deployment', 'What do the recent logs and events say?']);
  const app = subjectOf(APP, APP);
  assert.deepEqual(suggestions(app), ['Why is this OutOfSync?', 'Explain this application']);
  const svc = subjectOf({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ui', namespace: 'web' } }, APP);
  assert.deepEqual(suggestions(svc), ['Explain this Service']);
});

test('an ApplicationSet handed in as the application is recognised, an Application is not', () => {
  const appset = { apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', metadata: { name: 'guestbook', namespace: 'argocd' } };
  assert.equal(isApplicationSet(appset), true);
  assert.equal(isApplicationSet(APP), false);
  assert.equal(isApplicationSet({ apiVersion: 'example.com/v1', kind: 'ApplicationSet', metadata: { name: 'x' } }), false);
  assert.equal(isApplicationSet(undefined), false);
});
