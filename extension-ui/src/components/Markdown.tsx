import { useCallback, useMemo } from 'react';
import type { MouseEvent } from 'react';
import { renderMarkdown } from '../markdown';

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API needs a secure context; Argo CD behind plain http falls back to execCommand.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    document.body.removeChild(area);
    return ok;
  }
}

/** Untrusted markdown -> sanitized HTML (see markdown.ts); copy buttons handled by delegation. */
export function Markdown(props: { text: string }) {
  const html = useMemo(() => renderMarkdown(props.text), [props.text]);
  const onClick = useCallback((e: MouseEvent<HTMLDivElement>) => {
    const target = e.target as HTMLElement;
    const button = target.closest ? (target.closest('[data-aa-copy]') as HTMLButtonElement | null) : null;
    if (!button) return;
    const code = button.closest('.aa-code')?.querySelector('code');
    if (!code) return;
    void copyText(code.textContent ?? '').then((ok) => {
      button.textContent = ok ? 'Copied' : 'Copy failed';
      window.setTimeout(() => {
        button.textContent = 'Copy';
      }, 1500);
    });
  }, []);
  return <div className="aa-md" data-testid="aa-markdown" onClick={onClick} dangerouslySetInnerHTML={{ __html: html }} />;
}
