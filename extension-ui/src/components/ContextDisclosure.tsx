import type { ContextInfo } from '../types';

/** What the backend sent to the model for this turn (from the `context` event), and what the panel
 * could not attach from Argo CD's API (`notes`). Items from Argo CD are marked; a diff shows itself. */
export function ContextDisclosure(props: { context: ContextInfo; notes?: string[] }) {
  const { items, tokens_total, budget } = props.context;
  const notes = props.notes ?? [];
  const truncated = items.filter((i) => i.truncated).length;
  const redactions = items.reduce((n, i) => n + (i.redactions || 0), 0);
  const parts = [`${items.length} item${items.length === 1 ? '' : 's'}`, `${tokens_total.toLocaleString()} / ${budget.toLocaleString()} tokens`];
  if (truncated) parts.push(`${truncated} truncated`);
  if (redactions) parts.push(`${redactions} redaction${redactions === 1 ? '' : 's'}`);
  if (notes.length) parts.push(`${notes.length} not included`);
  const diffs = items.filter((i) => i.kind === 'diff' && i.detail);
  return (
    <details className="aa-context" data-testid="aa-context">
      <summary>Context sent: {parts.join(' · ')}</summary>
      {notes.length ? (
        <ul className="aa-context__notes" data-testid="aa-context-notes">
          {notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      ) : null}
      <table>
        <thead>
          <tr>
            <th>Kind</th>
            <th>Item</th>
            <th className="aa-num">Tokens</th>
            <th>Notes</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item, i) => (
            <tr key={`${item.kind}/${item.ref}/${i}`} data-source={item.source}>
              <td>{item.kind}</td>
              <td>{item.ref}</td>
              <td className="aa-num">{item.tokens.toLocaleString()}</td>
              <td>
                {item.source === 'argocd' ? <span className="aa-flag">from Argo CD</span> : null}
                {item.truncated ? <span className="aa-flag">truncated</span> : null}
                {item.redactions ? (
                  <span className="aa-flag">
                    {item.redactions} redacted
                  </span>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {diffs.map((d, i) => (
        <div className="aa-diff" data-testid="aa-diff" key={`${d.ref}/${i}`}>
          <div className="aa-diff__title">Diff from Git: {d.ref}</div>
          <pre>
            {(d.detail ?? '').split('\n').map((line, j) => (
              <span key={j} className={line.startsWith('+') && !line.startsWith('+++') ? 'aa-diff__add' : line.startsWith('-') && !line.startsWith('---') ? 'aa-diff__del' : undefined}>
                {line}
                {'\n'}
              </span>
            ))}
          </pre>
        </div>
      ))}
    </details>
  );
}
