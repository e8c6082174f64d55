// Markdown from the model is untrusted. markdown-it with `html: false` escapes every raw HTML tag
// and its link validator drops javascript:/vbscript:/file:/data: URLs; on top of that we allow only
// http(s)/mailto and relative links, and open links in a new tab without an opener.
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

const SAFE_URL = /^(https?:|mailto:|#|\/(?!\/)|\.{0,2}\/)/i;
const defaultValidate = md.validateLink.bind(md);
md.validateLink = (url: string): boolean => defaultValidate(url) && SAFE_URL.test(url.trim());

const escapeHtml = md.utils.escapeHtml;

// Links open in a new tab and cannot reach back into Argo CD's window.
const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('target', '_blank');
  tokens[idx].attrSet('rel', 'noopener noreferrer nofollow');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

// Images from the model could beacon out (and leak context in the URL): show them as links.
md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx];
  const src = token.attrGet('src') ?? '';
  const alt = escapeHtml(token.content || src);
  if (!md.validateLink(src)) return alt;
  return `<a href="${escapeHtml(src)}" target="_blank" rel="noopener noreferrer nofollow">${alt}</a>`;
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
  return md.render(text);
}
