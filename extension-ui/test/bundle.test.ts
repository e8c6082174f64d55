// The built bundle, as Argo CD loads it: evaluated against a page that provides React on window.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';

const BUNDLE = path.resolve(process.cwd(), '..', 'dist', 'resources', 'extension-assistant', 'extension-assistant.js');
const code = readFileSync(BUNDLE, 'utf8');

test('the bundle does not contain a copy of React or ReactDOM', () => {
  for (const marker of [
    '__SECRET_INTERNALS_DO_NOT_USE_OR_YOU_WILL_BE_FIRED',
    '__CLIENT_INTERNALS_DO_NOT_USE_OR_WARN_USERS_THEY_CANNOT_UPGRADE',
    'react.transitional.element',
    'react.element',
    'Minified React error',
    'ReactCurrentDispatcher',
    'unstable_scheduleCallback',
  ]) {
    assert.ok(!code.includes(marker), `bundle contains React source (${marker})`);
  }
  assert.ok(code.length < 400_000, `bundle is ${code.length} bytes`);
});

interface Registration {
  fn: string;
  args: unknown[];
}

function load(withJsxRuntime: boolean) {
  const calls: Array<{ via: string; type: unknown; props: Record<string, unknown>; nargs?: number }> = [];
  const registrations: Registration[] = [];
  const React = {
    Fragment: 'Fragment',
    createElement: (type: unknown, props: Record<string, unknown> | null, ...children: unknown[]) => {
      const p = { ...(props ?? {}) };
      if (children.length) p.children = children.length === 1 ? children[0] : children;
      calls.push({ via: 'createElement', type, props: p, nargs: 2 + children.length });
      return { type, props: p };
    },
  };
  const appended: Array<{ id?: string; textContent?: string }> = [];
  const window: Record<string, unknown> = {
    React,
    ReactDOM: {},
    extensionsAPI: {
      registerResourceExtension: (...args: unknown[]) => registrations.push({ fn: 'resource', args }),
      registerStatusPanelExtension: (...args: unknown[]) => registrations.push({ fn: 'status', args }),
    },
  };
  if (withJsxRuntime) {
    const jsx = (type: unknown, props: Record<string, unknown>, key?: unknown) => {
      calls.push({ via: 'jsx', type, props: { ...props, ...(key === undefined ? {} : { key }) } });
      return { type, props };
    };
    window.ReactJSXRuntime = { jsx, jsxs: jsx, Fragment: 'Fragment' };
  }
  const document = {
    getElementById: () => null,
    createElement: () => ({}),
    head: { appendChild: (el: { id?: string; textContent?: string }) => appended.push(el) },
  };
  window.window = window;
  window.document = document;
  vm.runInNewContext(code, { window, document, console });
  return { calls, registrations, appended };
}

for (const jsxRuntime of [false, true]) {
  const label = jsxRuntime ? 'React 19 page (window.ReactJSXRuntime)' : 'React 16 page (no jsx runtime)';
  test(`registers the tab and the status panel item on a ${label}`, () => {
    const { calls, registrations, appended } = load(jsxRuntime);
    const tab = registrations.find((r) => r.fn === 'resource');
    assert.ok(tab, 'registerResourceExtension was called');
    // objects from the vm realm have other prototypes: compare their JSON
    assert.equal(JSON.stringify(tab.args.slice(1)), JSON.stringify(['**', '*', 'Assistant', { icon: 'fa fa-comments' }]));
    const status = registrations.find((r) => r.fn === 'status');
    assert.ok(status);
    assert.equal(status.args[1], 'Assistant');
    assert.equal(typeof status.args[3], 'function', 'a flyout component');
    assert.equal(appended.length, 1, 'styles injected once');
    assert.match(appended[0].textContent ?? '', /\.aa-panel/);

    // Render the tab component one level: the element must come from the page's React.
    const app = { metadata: { name: 'guestbook', namespace: 'argocd' }, spec: { project: 'default' } };
    const el = (tab.args[0] as (p: unknown) => { type: unknown; props: Record<string, unknown> })({ resource: app, application: app, tree: {} });
    assert.equal(el.props.application, app);
    assert.equal(el.props.variant, 'tab');
    assert.equal(calls.at(-1)?.via, jsxRuntime ? 'jsx' : 'createElement');
  });
}

test('the React 16 fallback passes key and children through createElement', () => {
  const { calls, registrations } = load(false);
  const status = registrations.find((r) => r.fn === 'status')!;
  (status.args[0] as (p: unknown) => unknown)({ application: { metadata: { name: 'a' } }, openFlyout: () => undefined });
  const anchor = calls.find((c) => c.type === 'a');
  assert.ok(anchor, 'rendered an <a>');
  // <a><i/> Ask</a> has static children: they must be createElement arguments, or
  // React 16 takes them for an unkeyed list and warns.
  assert.equal(anchor.nargs, 4, 'static children spread into createElement');
  assert.ok(Array.isArray(anchor.props.children));
  assert.equal(typeof anchor.props.onClick, 'function');
  const help = calls.find((c) => c.type === 'span' && c.props.className === 'aa-help');
  assert.equal(help?.nargs, 3, 'a single child stays one argument');
});
