/// The inspector's web page, carried inside the binary as string literals.
///
/// Plain HTML, CSS and JavaScript with no framework and no build step, so the
/// single binary (and the Docker image, which ships only the binary) serves
/// the whole page offline, with nothing to vendor or keep up to date
/// (docs/inspector-page.md). The script and the style are separate assets rather
/// than inline, so the page works under a `Content-Security-Policy` that
/// allows only `'self'` (``contentSecurityPolicy``).
enum InspectorPage {
    /// The page's files by request path: `/` (or `/index.html`) and `/assets/<name>`.
    /// `nil` for anything else.
    static func asset(_ path: String) -> (contentType: String, body: String)? {
        switch path {
        case "/", "/index.html":
            return ("text/html; charset=utf-8", Self.html)
        case "/assets/inspector.css":
            return ("text/css; charset=utf-8", Self.style)
        case "/assets/format.js":
            return ("text/javascript; charset=utf-8", Self.formatScript)
        case "/assets/inspector.js":
            return ("text/javascript; charset=utf-8", Self.script)
        default:
            return nil
        }
    }

    /// A policy the page runs under: no inline script, nothing from other
    /// origins, so a hostile webhook body that slipped into the DOM still
    /// could not run code or send data anywhere.
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'"

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Webhook inspector</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/assets/inspector.css">
        <script src="/assets/format.js" defer></script>
        <script src="/assets/inspector.js" defer></script>
        </head>
        <body>
        <header class="bar">
          <h1>Webhook inspector</h1>
          <span id="live" data-testid="live" class="live off" title="Live updates (server-sent events)">connecting…</span>
          <span class="spacer"></span>
          <span id="count" data-testid="count" class="muted"></span>
          <a id="export-selected" data-testid="export-selected" class="button" href="/api/har" download="webhooks.har" hidden>Export selected (HAR)</a>
          <a id="export-all" data-testid="export-all" class="button" href="/api/har" download="webhooks.har">Export all (HAR)</a>
        </header>
        <form id="filters" class="filters" autocomplete="off">
          <label>Method <select id="filter-method" data-testid="filter-method">
            <option value="">any</option><option value="GET">GET</option><option value="POST">POST</option><option value="PUT">PUT</option>
            <option value="PATCH">PATCH</option><option value="DELETE">DELETE</option><option value="HEAD">HEAD</option><option value="OPTIONS">OPTIONS</option>
          </select></label>
          <label>Status <input id="filter-status" data-testid="filter-status" placeholder="2xx, 404" size="9"></label>
          <label>Path <input id="filter-path" data-testid="filter-path" placeholder="/github" size="14"></label>
          <label>Header <input id="filter-header" data-testid="filter-header" placeholder="name or name:value" size="18"></label>
          <label>Body <input id="filter-body" data-testid="filter-body" placeholder="text in the body" size="16"></label>
          <button type="button" id="filter-clear" class="link">clear</button>
          <span id="filter-note" class="muted"></span>
        </form>
        <main class="split">
          <section class="list-pane">
            <table class="list" id="list" data-testid="list">
              <thead><tr>
                <th><input type="checkbox" id="select-all" title="Select all shown"></th>
                <th>Time</th><th>Method</th><th>Path</th><th>Status</th><th class="num">Duration</th>
                <th class="num">Req</th><th class="num">Resp</th>
              </tr></thead>
              <tbody id="rows"></tbody>
            </table>
            <p id="empty" class="empty" data-testid="empty">No webhooks yet. Send one to your channel's URL and it appears here.</p>
            <button type="button" id="more" class="link" hidden>Load older</button>
          </section>
          <section class="detail-pane" id="detail" data-testid="detail">
            <p class="empty">Select a webhook to see what arrived and what the sender got back.</p>
          </section>
        </main>
        </body>
        </html>

        """#
}
