// Entry point: registers the Assistant with Argo CD's extensionsAPI. React comes from the page
// (see scripts/build.mjs); this file runs once when Argo CD evaluates /extensions.js.
import { Panel } from './components/Panel';
import { isApplicationSet, type Application, type KubeObject } from './resource';
import css from './styles.css';

const STYLE_ID = 'argocd-assistant-style';
const TITLE = 'Assistant';
const ICON = 'fa fa-comments';

interface ExtensionsAPI {
  registerResourceExtension?: (component: unknown, group: string, kind: string, tabTitle: string, opts?: { icon?: string }) => void;
  registerStatusPanelExtension?: (component: unknown, title: string, id: string, flyout?: unknown) => void;
}

function injectStyles(): void {
  if (typeof document === 'undefined' || document.getElementById(STYLE_ID)) return;
  const style = document.createElement('style');
  style.id = STYLE_ID;
  style.textContent = css;
  document.head.appendChild(style);
}

/** The tab on every resource and on the application node (where resource === application). */
export function ResourceTab(props: { resource?: KubeObject; application: Application; tree?: unknown }) {
  return <Panel resource={props.resource} application={props.application} tree={props.tree} variant="tab" />;
}

/** Status-panel entry: opens the same chat about the whole Application in a flyout. */
// Compact, like Argo CD's own status items: the status panel is one row, and at 1600 px on Argo CD 3.5 a
// wide last item is clipped ("ASSISTAN / As…"). The label carries the same help "?" theirs do.
const STATUS_HELP = 'Ask the Assistant about this application: it reads the live state, events and logs';

export function StatusItem(props: { application: Application; openFlyout?: () => void }) {
  if (isApplicationSet(props.application)) return null;
  return (
    <div className="application-status-panel__item aa-status-item" data-testid="aa-status-item">
      <label style={{ fontSize: '12px', fontWeight: 600, color: '#6D7F8B' }}>
        ASSISTANT{' '}
        <span className="aa-help" title={STATUS_HELP} data-testid="aa-status-help">
          <i className="fa fa-question-circle help-tip" />
        </span>
      </label>
      <div className="application-status-panel__item-value aa-status-item__value">
        <a onClick={() => props.openFlyout?.()} data-testid="aa-open-flyout" title="Ask about this app">
          <i className={ICON} /> Ask
        </a>
      </div>
    </div>
  );
}

export function Flyout(props: { application: Application; tree?: unknown }) {
  return <Panel resource={props.application} application={props.application} tree={props.tree} variant="flyout" />;
}

((w: Window & { extensionsAPI?: ExtensionsAPI }) => {
  const api = w.extensionsAPI;
  if (!api?.registerResourceExtension) {
    console.warn('argocd-assistant: window.extensionsAPI is missing; is this Argo CD >= 2.6?');
    return;
  }
  injectStyles();
  // '**' matches every group including the core (empty) one; '*' every kind.
  api.registerResourceExtension(ResourceTab, '**', '*', TITLE, { icon: ICON });
  // Status-panel extensions arrived later (Argo CD 2.10); older servers just get the tab.
  api.registerStatusPanelExtension?.(StatusItem, TITLE, 'argocd-assistant', Flyout);
})(window);
