import type { ContextInfo } from '../types';

/** What the backend sent to the model for this turn (from the `context` event). */
export function ContextDisclosure(props: { context: ContextInfo }) {
  const { items, tokens_total, budget } = props.context;
  const truncated = items.filter((i) => i.truncated).length;
  const redactions = items.reduce((n, i) => n + (i.redactions || 0), 0);
  const parts = [`${items.length} item${items.length === 1 ? '' : 's'}`, `${tokens_total.toLocaleString()} / ${budget.toLocaleString()} tokens`];
  if (truncated) parts.push(`${truncated} truncated`);
  if (redactions) parts.push(`${redactions} redaction${redactions === 1 ? '' : 's'}`);
  return (
    <details className="aa-context" data-testid="aa-context">
      <summary>Context sent: {parts.join(' · ')}</summary>
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
            <tr key={`${item.kind}/${item.ref}/${i}`}>
              <td>{item.kind}</td>
              <td>{item.ref}</td>
              <td className="aa-num">{item.tokens.toLocaleString()}</td>
              <td>
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
    </details>
  );
}
