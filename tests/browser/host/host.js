// An Argo CD-like application page for the browser tests and `make ui-dev`. It does what Argo CD's
// UI does for extensions (ui/src/app/shared/services/extensions-service.ts): exposes
// window.extensionsAPI before /extensions.js runs, then renders registered resource tabs with
// {resource, tree, application} and status-panel items with {application, openFlyout}. It is plain
// React.createElement so the same file runs on React 16 and React 19.
(function () {
  'use strict';
  var resourceExtensions = [];
  var statusPanelExtensions = [];
  var appViewExtensions = [];

  window.extensionsAPI = {
    registerResourceExtension: function (component, group, kind, tabTitle, opts) {
      resourceExtensions.push({ component: component, group: group, kind: kind, title: tabTitle, icon: (opts || {}).icon });
    },
    registerStatusPanelExtension: function (component, title, id, flyout) {
      statusPanelExtensions.push({ component: component, title: title, id: id, flyout: flyout });
    },
    registerAppViewExtension: function (component, title, icon, shouldDisplay) {
      appViewExtensions.push({ component: component, title: title, icon: icon, shouldDisplay: shouldDisplay });
    },
    registerSystemLevelExtension: function () {},
    registerTopBarActionMenuExt: function () {},
  };
  window.__hostExtensions = { resource: resourceExtensions, statusPanel: statusPanelExtensions, appView: appViewExtensions };

  // Argo CD matches group and kind with minimatch(value, pattern) (extensions-service.ts,
  // getResourceTabs): '**' also matches the core (empty) group, '*' does not.
  function globMatch(pattern, value) {
    return window.__testHostMinimatch(value, pattern);
  }

  function nodeKey(n) {
    return [n.group || '', n.kind, n.namespace || '', n.name].join('/');
  }

  function start(config) {
    var React = window.React;
    var h = React.createElement;
    var app = config.application;
    var tree = config.tree || { nodes: [] };
    var live = config.live || {};
    var appNode = { group: 'argoproj.io', kind: 'Application', namespace: app.metadata.namespace, name: app.metadata.name, app: true };
    var params = new URLSearchParams(location.search);

    function healthOf(n) {
      if (n.app) return (app.status && app.status.health && app.status.health.status) || 'Unknown';
      return (n.health && n.health.status) || '';
    }

    function tabsFor(n) {
      var tabs = [{ id: 'summary', title: 'Summary' }, { id: 'events', title: 'Events' }];
      resourceExtensions.forEach(function (ext, i) {
        if (globMatch(ext.group, n.group || '') && globMatch(ext.kind, n.kind)) {
          tabs.push({ id: 'extension-' + i, title: ext.title, ext: ext });
        }
      });
      return tabs;
    }

    function NodeCard(props) {
      var n = props.node;
      var health = healthOf(n);
      return h(
        'div',
        {
          className: 'host-node' + (props.selected ? ' host-node--selected' : ''),
          'data-testid': 'host-node',
          'data-node': n.app ? 'app' : nodeKey(n),
          onClick: props.onClick,
        },
        h('div', { className: 'host-node__kind' }, n.kind),
        h('div', { className: 'host-node__name' }, n.name),
        health ? h('div', { className: 'host-node__health host-health--' + health }, health) : null,
      );
    }

    function Summary(props) {
      return h('pre', { className: 'host-summary' }, JSON.stringify(props.resource, null, 2));
    }

    // An ApplicationSet page (Argo CD 3.4+, appset-resource-details.tsx): resource tabs registered for
    // ('argoproj.io', 'ApplicationSet') get the ApplicationSet as both resource and application and an
    // empty tree.
    function AppSetPage() {
      var appSet = config.applicationSet;
      var tabs = [{ id: 'summary', title: 'Summary' }];
      resourceExtensions.forEach(function (ext, i) {
        if (globMatch(ext.group, 'argoproj.io') && globMatch(ext.kind, 'ApplicationSet')) {
          tabs.push({ id: 'extension-' + i, title: ext.title, ext: ext });
        }
      });
      var t = React.useState(params.get('tab') || 'summary');
      var active = tabs.filter(function (x) { return x.id === t[0]; })[0] || tabs[0];
      var resource = Object.assign({}, appSet, { status: appSet.status || {} });
      return h(
        'div',
        { className: 'host-layout', 'data-testid': 'host-appset-page' },
        h('div', { className: 'host-sliding-panel', 'data-testid': 'host-resource-panel' },
          h('div', { className: 'host-panel-title' }, h('span', { className: 'host-panel-kind' }, 'ApplicationSet'), ' ', appSet.metadata.name),
          h('div', { className: 'host-tabs' }, tabs.map(function (x) {
            return h('a', {
              key: x.id, className: 'host-tab' + (x === active ? ' host-tab--active' : ''), 'data-testid': 'host-tab',
              'data-tab': x.title, onClick: function () { t[1](x.id); },
            }, x.title.toUpperCase());
          })),
          h('div', { className: 'host-tab-content', key: active.id },
            active.ext
              ? h(active.ext.component, { resource: resource, tree: { nodes: [] }, application: appSet })
              : h(Summary, { resource: resource }))));
    }

    function App() {
      var s = React.useState(params.get('node'));
      var selected = s[0], setSelected = s[1];
      var t = React.useState(params.get('tab') || 'summary');
      var tab = t[0], setTab = t[1];
      var f = React.useState(params.get('flyout'));
      var flyout = f[0], setFlyout = f[1];

      // Keep the selection in the URL like Argo CD does (?node=...&tab=...), so a reload restores it.
      React.useEffect(function () {
        var q = new URLSearchParams(location.search);
        ['node', 'tab', 'flyout'].forEach(function (k) { q.delete(k); });
        if (selected) { q.set('node', selected); q.set('tab', tab); }
        if (flyout) q.set('flyout', flyout);
        history.replaceState(null, '', location.pathname + '?' + q.toString());
      }, [selected, tab, flyout]);

      var nodes = [appNode].concat(tree.nodes || []);
      var node = null;
      nodes.forEach(function (n) { if ((n.app ? 'app' : nodeKey(n)) === selected) node = n; });
      var resource = node ? (node.app ? app : live[nodeKey(node)]) : null;
      var tabs = node ? tabsFor(node) : [];
      var activeTab = tabs.filter(function (x) { return x.id === tab; })[0] || tabs[0];
      var fly = statusPanelExtensions.filter(function (x) { return x.id === flyout; })[0];

      return h(
        'div',
        { className: 'host-layout' },
        h('nav', { className: 'host-nav' }, h('div', { className: 'host-logo' }, 'argo')),
        h(
          'div',
          { className: 'host-main' },
          h('div', { className: 'host-top' }, h('span', { className: 'host-crumbs' }, 'Applications / ', h('b', null, app.metadata.name))),
          h(
            'div',
            { className: 'host-status-panel', 'data-testid': 'host-status-panel' },
            h('div', { className: 'application-status-panel__item' },
              h('label', null, 'APP HEALTH'),
              h('div', { className: 'host-health--' + healthOf(appNode) }, healthOf(appNode))),
            h('div', { className: 'application-status-panel__item' },
              h('label', null, 'SYNC STATUS'),
              h('div', null, (app.status && app.status.sync && app.status.sync.status) || 'Unknown')),
            statusPanelExtensions.map(function (ext) {
              return h(ext.component, {
                key: ext.id,
                application: app,
                openFlyout: function () { setFlyout(ext.id); },
              });
            }),
          ),
          h(
            'div',
            { className: 'host-tree', 'data-testid': 'host-tree' },
            nodes.map(function (n) {
              var key = n.app ? 'app' : nodeKey(n);
              return h(NodeCard, {
                key: key,
                node: n,
                selected: key === selected,
                onClick: function () { setSelected(key); setTab('summary'); },
              });
            }),
          ),
        ),
        node
          ? h(
              'div',
              { className: 'host-sliding-panel', 'data-testid': 'host-resource-panel' },
              h('button', { className: 'host-close', 'data-testid': 'host-close', onClick: function () { setSelected(null); } }, '×'),
              h('div', { className: 'host-panel-title' }, h('span', { className: 'host-panel-kind' }, node.kind), ' ', node.name),
              h(
                'div',
                { className: 'host-tabs' },
                tabs.map(function (x) {
                  return h(
                    'a',
                    {
                      key: x.id,
                      className: 'host-tab' + (x === activeTab ? ' host-tab--active' : ''),
                      'data-testid': 'host-tab',
                      'data-tab': x.title,
                      onClick: function () { setTab(x.id); },
                    },
                    x.ext && x.ext.icon ? h('i', { className: x.ext.icon }) : null,
                    x.title.toUpperCase(),
                  );
                }),
              ),
              h(
                'div',
                { className: 'host-tab-content', key: activeTab.id },
                activeTab.ext
                  ? h(activeTab.ext.component, { resource: resource, tree: tree, application: app })
                  : activeTab.id === 'summary'
                    ? h(Summary, { resource: resource })
                    : h('div', { className: 'host-empty' }, 'No events.'),
              ),
            )
          : null,
        fly && fly.flyout
          ? h(
              'div',
              { className: 'host-sliding-panel host-flyout', 'data-testid': 'host-flyout' },
              h('button', { className: 'host-close', onClick: function () { setFlyout(null); } }, '×'),
              h(fly.flyout, { application: app, tree: tree }),
            )
          : null,
      );
    }

    var root = document.getElementById('root');
    var el = h(params.get('page') === 'appset' ? AppSetPage : App);
    // React 19 (Argo CD 3.5) renders through the host's own createRoot; React 16 has ReactDOM.render.
    if (window.__testHostCreateRoot) window.__testHostCreateRoot(root).render(el);
    else window.ReactDOM.render(el, root);
  }

  window.__startHost = function () {
    // Relative, like every URL of Argo CD's page: resolved against <base href> (sub-path installs).
    fetch('host-config.json', { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(start)
      .catch(function (e) {
        document.getElementById('root').textContent = 'host page failed: ' + e;
      });
  };
})();
