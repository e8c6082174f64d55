// Markdown from the model is untrusted. markdown-it with `html: false` escapes every raw HTML tag
// and its link validator drops javascript:/vbscript:/file:/data: URLs; on top of that we allow only
// http(s)/mailto and relative links, and open links in a new tab without an opener.
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

// Allowed: http(s), mailto, in-page anchors, and paths relative to Argo CD ("/x", "./x", "../x").
// A protocol-relative "//host" (or "/\\host", which browsers read the same) is an absolute link to
// another host and is refused.
export const SAFE_URL = /^(https?:|mailto:|#|\/(?![/\\])|\.{1,2}\/)/i;
const defaultValidate = md.validateLink.bind(md);
md.validateLink = (url: string): boolean => defaultValidate(url) && SAFE_URL.test(url.trim());

const escapeHtml = md.utils.escapeHtml;

/** The host an absolute link leads to, shown next to its text: a model steered by hostile context
 * could hide any URL (and the data in it) behind harmless words. */
export function linkHost(href: string): string | null {
  if (!/^https?:/i.test(href.trim())) return null;
  try {
    return new URL(href.trim()).host || null;
  } catch {
    return null;
  }
}

type LinkEnv = { aaLinkHosts?: (string | null)[] };

// Links open in a new tab and cannot reach back into Argo CD's window.
const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
const defaultLinkClose =
  md.renderer.rules.link_close ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env: LinkEnv, self) => {
  const token = tokens[idx];
  token.attrSet('target', '_blank');
  token.attrSet('rel', 'noopener noreferrer nofollow');
  // A bare URL (linkify, autolink) already shows where it goes.
  const shown = token.markup === 'linkify' || token.markup === 'autolink';
  (env.aaLinkHosts ??= []).push(shown ? null : linkHost(token.attrGet('href') ?? ''));
  return defaultLinkOpen(tokens, idx, options, env, self);
};
md.renderer.rules.link_close = (tokens, idx, options, env: LinkEnv, self) => {
  const host = env.aaLinkHosts?.pop() ?? null;
  const close = defaultLinkClose(tokens, idx, options, env, self);
  return host ? `${close}<span class="aa-link-host"> (${escapeHtml(host)})</span>` : close;
};

// Images from the model could beacon out (and leak context in the URL): show them as links.
md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx];
  const src = token.attrGet('src') ?? '';
  const alt = escapeHtml(token.content || src);
  if (!md.validateLink(src)) return alt;
  const host = linkHost(src);
  const shown = host ? `<span class="aa-link-host"> (${escapeHtml(host)})</span>` : '';
  return `<a href="${escapeHtml(src)}" target="_blank" rel="noopener noreferrer nofollow">${alt}</a>${shown}`;
};

// Fenced code gets a header with its language and a copy button; the panel handles the click by
// delegation (no inline handlers).
md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const lang = (token.info.trim().split(/\s+/)[0] ?? '').replace(/[^\w+#.-]/g, '').slice(0, 24);
  const code = escapeHtml(token.content);
  const cls = lang ? ` class="language-${lang}"` : '';
  return (
    `<div class="aa-code"><div class="aa-code__bar"><span class="aa-code__lang">${escapeHtml(lang)}</span>` +
    `<button type="button" class="aa-code__copy" data-aa-copy="1" title="Copy to clipboard">Copy</button></div>` +
    `<pre><code${cls}>${code}</code></pre></div>\n`
  );
};
md.renderer.rules.code_block = (tokens, idx) => md.renderer.rules.fence!(tokens, idx, md.options, {}, md.renderer);

/** Render untrusted markdown to HTML that is safe to put in innerHTML. */
export function renderMarkdown(text: string): string {
  return md.render(text, {});
}
