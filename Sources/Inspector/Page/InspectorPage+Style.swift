extension InspectorPage {
    /// The page's style: one light theme, monospace for everything that came
    /// off the wire, colours only where they mean something (status class,
    /// differences, the tunnel's own errors).
    static let style = #"""
        :root {
          --bg: #f6f7f9; --panel: #fff; --line: #e2e5ea; --text: #1d2330; --muted: #6b7383;
          --accent: #2f6feb; --ok: #1a7f37; --redirect: #8250df; --client: #bc4c00; --server: #cf222e;
          --add: #dafbe1; --del: #ffebe9; --sel: #e8f0fe;
          --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
        }
        * { box-sizing: border-box; }
        html, body { margin: 0; height: 100%; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
          color: var(--text); background: var(--bg); display: flex; flex-direction: column; }
        [hidden] { display: none !important; }
        .bar { display: flex; align-items: center; gap: 12px; padding: 10px 16px; background: #1d2330; color: #fff; }
        .bar h1 { font-size: 16px; margin: 0; font-weight: 600; }
        .spacer { flex: 1; }
        .live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #3b4252; }
        .live.on { background: var(--ok); }
        .live.on::before { content: "● "; }
        .bar .muted { color: #aab1c0; }
        .button, button.primary, button.secondary { font: inherit; font-size: 13px; padding: 4px 10px; border-radius: 6px;
          border: 1px solid var(--line); background: var(--panel); color: var(--text); cursor: pointer; text-decoration: none; }
        .bar .button { background: #2b3242; border-color: #3b4252; color: #fff; }
        button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
        button.primary:disabled { opacity: .6; cursor: progress; }
        button.link { font: inherit; background: none; border: none; color: var(--accent); cursor: pointer; padding: 0; }
        .filters { display: flex; flex-wrap: wrap; align-items: center; gap: 14px; padding: 8px 16px;
          background: var(--panel); border-bottom: 1px solid var(--line); }
        .filters label { font-size: 12px; color: var(--muted); display: flex; align-items: center; gap: 6px; }
        .filters input, .filters select { font: 13px var(--mono); padding: 3px 6px; border: 1px solid var(--line); border-radius: 5px; }
        .muted { color: var(--muted); font-size: 12px; }
        .split { flex: 1; display: grid; grid-template-columns: minmax(420px, 44%) 1fr; min-height: 0; }
        .list-pane { overflow: auto; border-right: 1px solid var(--line); background: var(--panel); }
        .detail-pane { overflow: auto; padding: 14px 18px 40px; }
        table.list { width: 100%; border-collapse: collapse; font-size: 13px; }
        table.list th { position: sticky; top: 0; background: #eef0f4; text-align: left; font-weight: 600;
          font-size: 11px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); padding: 6px 8px; }
        table.list td { padding: 5px 8px; border-top: 1px solid var(--line); white-space: nowrap; }
        table.list tr.row { cursor: pointer; }
        table.list tr.row:hover { background: #f3f5f8; }
        table.list tr.row.selected { background: var(--sel); }
        table.list tr.row.fresh { animation: fresh 1.2s ease-out; }
        @keyframes fresh { from { background: #fff8c5; } to { background: transparent; } }
        td.path { font-family: var(--mono); width: 100%; max-width: 0; }
        td.path > div { display: flex; align-items: center; min-width: 0; }
        td.path .p { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
        td.path .tag { flex: none; }
        td.method, td.status { font-family: var(--mono); font-weight: 600; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        td.time { color: var(--muted); font-variant-numeric: tabular-nums; }
        .s2 { color: var(--ok); } .s3 { color: var(--redirect); } .s4 { color: var(--client); } .s5 { color: var(--server); }
        .pending { color: var(--muted); font-style: italic; }
        .tag { display: inline-block; font: 600 10px/1.6 system-ui, sans-serif; padding: 0 6px; border-radius: 8px;
          margin-left: 6px; vertical-align: 1px; text-transform: uppercase; letter-spacing: .03em; }
        .tag.replay { background: #ddf4ff; color: #0a5ea8; }
        .tag.queued { background: #fff1c2; color: #7a5300; }
        .tag.error { background: var(--del); color: var(--server); }
        .tag.truncated { background: #eee; color: #555; }
        .empty { color: var(--muted); padding: 24px; text-align: center; }
        .detail-pane h2 { font-size: 17px; margin: 0 0 4px; font-family: var(--mono); word-break: break-all; }
        .detail-pane h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 18px 0 6px; }
        .meta { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--muted); font-size: 12px; margin-bottom: 10px; }
        .meta b { color: var(--text); font-weight: 600; }
        .actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin-bottom: 12px; }
        .error-box { background: var(--del); border-color: #ffc1bc; color: #82071e; }
        .startline { font-family: var(--mono); font-weight: 600; margin-bottom: 4px; word-break: break-all; }
        table.headers { border-collapse: collapse; font: 12.5px/1.5 var(--mono); width: 100%; }
        table.headers td { padding: 1px 8px 1px 0; vertical-align: top; word-break: break-all; }
        table.headers td.name { color: #0a5ea8; white-space: nowrap; width: 1%; }
        .body-bar { display: flex; align-items: center; gap: 10px; font-size: 12px; color: var(--muted); margin: 8px 0 4px; flex-wrap: wrap; }
        pre.body { font: 12.5px/1.5 var(--mono); background: #fbfbfc; border: 1px solid var(--line); border-radius: 6px;
          padding: 8px 10px; margin: 0; overflow: auto; max-height: 480px; white-space: pre-wrap; word-break: break-all; }
        table.form { border-collapse: collapse; font: 12.5px/1.5 var(--mono); width: 100%; }
        table.form th { text-align: left; font: 600 11px system-ui, sans-serif; color: var(--muted); padding: 3px 8px; border-bottom: 1px solid var(--line); }
        table.form td { padding: 3px 8px; border-bottom: 1px solid var(--line); vertical-align: top; word-break: break-all; }
        table.form td pre { margin: 0; white-space: pre-wrap; font: inherit; }
        .compare { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
        .compare h4 { margin: 0 0 6px; font-size: 13px; }
        .diff { font: 12px/1.5 var(--mono); white-space: pre-wrap; word-break: break-all; margin: 0; background: #fbfbfc;
          border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; max-height: 360px; overflow: auto; }
        .diff .add { background: var(--add); display: block; }
        .diff .del { background: var(--del); display: block; }
        .diff .same { display: block; }
        .changed { background: #fff1c2; border-radius: 4px; padding: 0 4px; }
        .editor label { display: block; font-size: 12px; color: var(--muted); margin: 8px 0 3px; }
        .editor input, .editor select, .editor textarea { font: 12.5px var(--mono); padding: 4px 6px; border: 1px solid var(--line); border-radius: 5px; }
        .editor textarea { width: 100%; min-height: 110px; resize: vertical; }
        .editor .row2 { display: flex; gap: 8px; }
        .editor .row2 input.path { flex: 1; }
        textarea.curl { width: 100%; min-height: 90px; font: 12px var(--mono); margin-top: 6px; }
        .note { font-size: 12px; color: var(--muted); margin: 4px 0; }

        """#
}
