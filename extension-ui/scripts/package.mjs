// Package the built bundle the way argocd-extension-installer expects: a tar whose only top-level
// folder is `resources/` (copied into /tmp/extensions/resources/), plus a sha256sum-format file for
// EXTENSION_CHECKSUM_URL. The tar is reproducible: sorted, fixed owner, mode and mtime.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, outFile } from './build.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const dist = path.resolve(root, '..', 'dist');
const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const name = `extension-assistant-${version}.tar`;
const tarPath = path.join(dist, name);

await rm(path.join(dist, 'resources'), { recursive: true, force: true });
await bundle();
execFileSync('tar', [
  '--sort=name',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--mtime=@0',
  '--mode=u+rwX,go+rX,go-w',
  '--format=gnu',
  '-cf',
  tarPath,
  '-C',
  dist,
  'resources',
]);
const digest = createHash('sha256').update(await readFile(tarPath)).digest('hex');
await writeFile(`${tarPath}.sha256`, `${digest}  ${name}\n`);
const size = (await readFile(outFile)).length;
console.log(`packaged dist/${name} (bundle ${size} bytes, sha256 ${digest})`);
