// Build the host page's React runtimes into ./build:
//  - react16.js: React 16's own UMD files, as Argo CD <= 3.4 puts React on window;
//  - react19.js: React 19 has no UMD build, so bundle it and put React, ReactDOM and react/jsx-runtime
//    on window, like Argo CD 3.5 does. Argo CD renders with its own bundled react-dom/client and exposes
//    no ReactDOMClient, so neither does this page: the host keeps createRoot under a name of its own.
//  - host-runtime.js: minimatch, the matcher Argo CD uses for extension group/kind (the version range
//    of Argo CD's ui/package.json), for the page's own use.
import { build } from 'esbuild';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'build');
await mkdir(out, { recursive: true });

// Production builds are what Argo CD ships; the development builds (`-dev`) let the smoke test
// catch React's warnings (keys, DOM props, hooks misuse).
for (const [mode, suffix] of [['production.min', ''], ['development', '-dev']]) {
  const umd = await Promise.all(
    [`react16/umd/react.${mode}.js`, `react-dom16/umd/react-dom.${mode}.js`].map((f) =>
      readFile(path.join(here, 'node_modules', f), 'utf8'),
    ),
  );
  await writeFile(path.join(out, `react16${suffix}.js`), umd.join('\n;\n'));
}

for (const [env, suffix] of [['production', ''], ['development', '-dev']]) await build({
  stdin: {
    contents: `
      import React from 'react';
      import ReactDOM from 'react-dom';
      import { createRoot } from 'react-dom/client';
      import ReactJSXRuntime from 'react/jsx-runtime';
      window.React = React;
      window.ReactDOM = ReactDOM;
      window.ReactJSXRuntime = ReactJSXRuntime;
      window.__testHostCreateRoot = createRoot;
    `,
    resolveDir: here,
    loader: 'js',
  },
  outfile: path.join(out, `react19${suffix}.js`),
  bundle: true,
  format: 'iife',
  minify: env === 'production',
  // The npm aliases: every `react`/`react-dom` import (also react-dom's own) resolves to React 19.
  alias: { react: 'react19', 'react-dom': 'react-dom19' },
  define: { 'process.env.NODE_ENV': JSON.stringify(env) },
  logLevel: 'warning',
});
await build({
  stdin: { contents: "import minimatch from 'minimatch'; window.__testHostMinimatch = minimatch;", resolveDir: here, loader: 'js' },
  outfile: path.join(out, 'host-runtime.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  logLevel: 'warning',
});
console.log(`host runtimes built in ${path.relative(process.cwd(), out)}`);
