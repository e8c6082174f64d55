import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { KeyboardEvent } from 'react';
import { AssistantClient } from '../api';
import { ArgoCDApi } from '../argocdApi';
import { gatherAttachments, planAttachments } from '../attachments';
import { isApplicationSet, subjectOf, suggestions, type Application, type KubeObject } from '../resource';
import { ChatSession, sessionFor, type KeyValueStore, type SessionState, type Turn } from '../session';
import { ContextDisclosure } from './ContextDisclosure';
import { ErrorNote } from './ErrorNote';
import { Markdown } from './Markdown';

export interface PanelProps {
  resource?: KubeObject;
  application: Application;
  tree?: unknown;
  variant?: 'tab' | 'flyout';
}

function browserStorage(): KeyValueStore | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function useSessionState(session: ChatSession): SessionState {
  const [state, setState] = useState(session.getState());
  useEffect(() => {
    setState(session.getState());
    return session.subscribe(setState);
  }, [session]);
  return state;
}

function TurnView(props: { turn: Turn; busy: boolean; onRetry: (id: number) => void }) {
  const { turn } = props;
  const streaming = turn.status === 'streaming';
  return (
    <div className="aa-turn" data-testid="aa-turn" data-status={turn.status}>
      <div className="aa-question" data-testid="aa-question">
        {turn.question}
      </div>
      <div className="aa-answer" data-testid="aa-answer">
        {turn.context ? <ContextDisclosure context={turn.context} notes={turn.attachmentNotes} /> : null}
        {turn.answer ? <Markdown text={turn.answer} /> : null}
        {streaming && !turn.answer ? (
          <span className="aa-thinking">{turn.context ? 'Thinking…' : 'Gathering context…'}</span>
        ) : null}
        {streaming ? <span className="aa-cursor" aria-hidden="true" /> : null}
        {turn.status === 'stopped' ? (
          <div className="aa-stopped" data-testid="aa-stopped">
            Stopped.
          </div>
        ) : null}
        {turn.status === 'error' && turn.error ? (
          <ErrorNote error={turn.error} disabled={props.busy} onRetry={() => props.onRetry(turn.id)} />
        ) : null}
        {turn.status === 'done' && turn.model ? (
          <div className="aa-answer__meta">
            <span>{turn.model}</span>
            {typeof turn.elapsedMs === 'number' ? <span>{(turn.elapsedMs / 1000).toFixed(1)} s</span> : null}
          </div>
        ) : null}
      </div>
    </div>
  );
}

/** What the panel shows where there is no Application to ask about (an ApplicationSet page). */
export function NotAnApplication(props: { variant?: 'tab' | 'flyout'; name?: string }) {
  return (
    <div className={`aa-panel${props.variant === 'flyout' ? ' aa-panel--flyout' : ''}`} data-testid="aa-panel">
      <div className="aa-header">
        <span className="aa-header__title">
          <i className="fa fa-comments" /> Assistant
        </span>
      </div>
      <div className="aa-messages">
        <div className="aa-empty" data-testid="aa-not-an-application">
          <p>
            The Assistant works on Applications and their resources.
            {props.name ? (
              <>
                {' '}
                <strong>{props.name}</strong> is an ApplicationSet: open one of the Applications it generates to ask
                about it.
              </>
            ) : null}
          </p>
        </div>
      </div>
    </div>
  );
}

export function Panel(props: PanelProps) {
  // Decided before any hook runs: this component never creates a client (no request is sent).
  if (isApplicationSet(props.application)) {
    return <NotAnApplication variant={props.variant} name={props.application.metadata?.name} />;
  }
  return <ChatPanel {...props} />;
}

function ChatPanel(props: PanelProps) {
  const subject = subjectOf(props.resource, props.application);
  const session = sessionFor(subject, () => new ChatSession(subject, new AssistantClient(subject.app), browserStorage()));
  const state = useSessionState(session);
  // The latest props decide what to read from Argo CD's API when the user asks (attachments.ts).
  useEffect(() => {
    const api = new ArgoCDApi(subject.app);
    session.setAttachmentSource((signal) =>
      gatherAttachments(api, planAttachments(subject, props.application, props.tree, props.resource), signal),
    );
  });
  const [draft, setDraft] = useState('');
  const messagesRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const stickToBottom = useRef(true);

  useEffect(() => {
    void session.restore();
    void session.loadModels();
  }, [session]);

  // Follow the streaming answer unless the user scrolled up to read.
  useLayoutEffect(() => {
    const el = messagesRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [state.turns]);

  const onScroll = useCallback(() => {
    const el = messagesRef.current;
    if (el) stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }, []);

  const send = useCallback(
    (text: string) => {
      if (!text.trim() || session.getState().busy) return;
      stickToBottom.current = true;
      setDraft('');
      void session.ask(text);
    },
    [session],
  );

  const onKeyDown = useCallback(
    (e: KeyboardEvent<HTMLTextAreaElement>) => {
      // Enter sends, Shift+Enter is a newline; leave IME composition alone.
      if (e.key === 'Enter' && !e.shiftKey && !(e.nativeEvent as unknown as { isComposing?: boolean }).isComposing) {
        e.preventDefault();
        send(draft);
      }
    },
    [draft, send],
  );

  const onNew = useCallback(() => {
    setDraft('');
    void session.newConversation();
    inputRef.current?.focus();
  }, [session]);

  const multiModel = state.models.length > 1;
  const defaultModel = state.models.find((m) => m.default)?.id;
  const empty = state.turns.length === 0 && !state.restoring;

  return (
    <div className={`aa-panel${props.variant === 'flyout' ? ' aa-panel--flyout' : ''}`} data-testid="aa-panel">
      <div className="aa-header">
        <span className="aa-header__title">
          <i className="fa fa-comments" /> Assistant
        </span>
        <span className="aa-header__subject" data-testid="aa-subject" title={subject.label}>
          {subject.label}
        </span>
        {subject.health ? <span className={`aa-badge aa-badge--${subject.health}`}>{subject.health}</span> : null}
        {subject.sync ? <span className={`aa-badge aa-badge--${subject.sync}`}>{subject.sync}</span> : null}
        <span className="aa-header__spacer" />
        {multiModel ? (
          <select
            className="aa-select"
            data-testid="aa-model"
            aria-label="Model"
            value={state.model ?? defaultModel ?? ''}
            disabled={state.busy}
            onChange={(e) => session.setModel(e.target.value || undefined)}
          >
            {state.models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
                {m.default ? ' (default)' : ''}
              </option>
            ))}
          </select>
        ) : null}
        <button
          type="button"
          className="aa-btn aa-btn--link"
          data-testid="aa-new"
          disabled={state.turns.length === 0 && !state.conversationId}
          onClick={onNew}
          title="Forget this conversation and start over"
        >
          <i className="fa fa-plus" /> New conversation
        </button>
      </div>
      <div className="aa-messages" ref={messagesRef} onScroll={onScroll} data-testid="aa-messages" aria-live="polite">
        {state.restoring ? <div className="aa-thinking">Restoring the conversation…</div> : null}
        {state.restoreError ? (
          <ErrorNote error={state.restoreError} onRetry={() => void session.restore(true)} />
        ) : null}
        {empty ? (
          <div className="aa-empty" data-testid="aa-empty">
            <p>
              Ask about <strong>{subject.label}</strong>. The Assistant reads its live state, events and logs (never
              Secret values) and explains what it sees.
            </p>
            <div className="aa-suggestions">
              {suggestions(subject).map((q) => (
                <button key={q} type="button" className="aa-chip" data-testid="aa-suggestion" onClick={() => send(q)}>
                  {q}
                </button>
              ))}
            </div>
          </div>
        ) : null}
        {state.turns.map((t) => (
          <TurnView key={t.id} turn={t} busy={state.busy} onRetry={(id) => void session.retry(id)} />
        ))}
      </div>
      <div className="aa-composer">
        <textarea
          ref={inputRef}
          className="aa-input"
          data-testid="aa-input"
          rows={2}
          placeholder={
            state.turns.length
              ? 'Ask a follow-up question'
              : `Ask a question about this ${subject.resource ? 'resource' : 'application'}`
          }
          aria-label="Question"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
        />
        {state.busy ? (
          <button key="stop" type="button" className="aa-btn aa-btn--stop" data-testid="aa-stop" onClick={() => session.stop()}>
            <i className="fa fa-stop" /> Stop
          </button>
        ) : (
          <button
            key="send"
            type="button"
            className="aa-btn"
            data-testid="aa-send"
            disabled={!draft.trim()}
            onClick={() => send(draft)}
          >
            <i className="fa fa-paper-plane" /> Send
          </button>
        )}
      </div>
      <div className="aa-hint">Enter to send · Shift+Enter for a new line</div>
    </div>
  );
}
