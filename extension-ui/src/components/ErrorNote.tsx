import type { UiError } from '../errors';

export function ErrorNote(props: { error: UiError; onRetry?: () => void; disabled?: boolean }) {
  const { error } = props;
  return (
    <div className="aa-error" role="alert" data-testid="aa-error" data-code={error.code}>
      <div className="aa-error__text">
        <div>{error.message}</div>
        {error.detail ? <div className="aa-error__detail">{error.detail}</div> : null}
      </div>
      {props.onRetry && error.retryable ? (
        <button type="button" className="aa-btn aa-btn--outline" data-testid="aa-retry" disabled={props.disabled} onClick={props.onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}
