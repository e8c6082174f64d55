// Bundle the extension into one IIFE at dist/resources/extension-assistant/extension-assistant.js
// (repo top level). React is NOT bundled: Argo CD's page provides it on `window`.
import { build } from 'esbuild';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
export const outDir = path.resolve(root, '..', 'dist', 'resources', 'extension-assistant');
export const outFile = path.join(outDir, 'extension-assistant.js');

// Argo CD <= 3.4 has React 16 on window.React (no jsx-runtime); 3.5 has React 19 and adds
// window.ReactJSXRuntime. The fallback builds the automatic runtime on createElement, which both
// versions have. Children go back to createElement's arguments: static children (jsxs) spread, so
// React does not take them for a keyed list; a dynamic list (jsx with an array) stays one argument,
// so React still checks its keys.
const SHIMS = {
  react: 'module.exports = window.React;',
  'react-dom': 'module.exports = window.ReactDOM;',
  // No 'react-dom/client': Argo CD's page has no ReactDOMClient, and window.ReactDOM has no createRoot on
  // React 19, so an import of it fails the build here rather than in the browser.
  'react/jsx-runtime': `
var R = window.React;
var rt = window.ReactJSXRuntime;
if (!rt) {
  var make = function (isStatic) {
    return function (type, props, key) {
      var p = {};
      var children;
      var hasChildren = false;
      for (var k in props) {
        if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
        if (k === 'children') { children = props[k]; hasChildren = true; } else p[k] = props[k];
      }
      if (key !== undefined) p.key = key;
      if (!hasChildren) return R.createElement(type, p);
      if (isStatic && Array.isArray(children)) return R.createElement.apply(R, [type, p].concat(children));
      return R.createElement(type, p, children);
    };
  };
  rt = { jsx: make(false), jsxs: make(true), Fragment: R.Fragment };
}
module.exports = rt;`,
};

const windowReact = {
  name: 'window-react',
  setup(b) {
    b.onResolve({ filter: /^react(-dom)?(\/.*)?$/ }, (args) => {
      if (!(args.path in SHIMS)) throw new Error(`unsupported React import "${args.path}": add a shim`);
      return { path: args.path, namespace: 'window-react' };
    });
    b.onLoad({ filter: /.*/, namespace: 'window-react' }, (args) => ({ contents: SHIMS[args.path], loader: 'js' }));
  },
};

export async function bundle({ minify = true } = {}) {
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: [path.join(root, 'src', 'index.tsx')],
    outfile: outFile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2019'],
    jsx: 'automatic',
    loader: { '.css': 'text' },
    minify,
    sourcemap: false,
    legalComments: 'eof',
    metafile: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    banner: { js: `/* argocd-assistant UI extension ${pkg.version} */` },
    plugins: [windowReact],
    logLevel: 'warning',
  });
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await bundle();
  const bytes = result.metafile.outputs[path.relative(process.cwd(), outFile)]?.bytes;
  console.log(`built ${path.relative(process.cwd(), outFile)} (${bytes ?? '?'} bytes, version ${pkg.version})`);
}
