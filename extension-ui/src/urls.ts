// Same-origin URLs resolved against the page's <base href>: under a sub-path install
// (`--rootpath /argocd`) Argo CD serves `<base href="/argocd/">`, and both its API and the extension
// proxy live under it (docs/upstream-facts.md, "Argo CD proxy extension").

/** `path` ("api/v1/...", a leading slash is ignored) resolved against document.baseURI. */
export function resolveUrl(path: string): string {
  const relative = path.replace(/^\/+/, '');
  if (typeof document === 'undefined' || !document.baseURI) return `/${relative}`;
  return new URL(relative, document.baseURI).toString();
}
