/**
 * The status page's CSS, inline in the page. The cell colours say the state at a glance and
 * differ in lightness too, for a reader who does not tell red from green: breaches are dark or
 * hatched, warnings amber, success green, what is not judged pale grey.
 */
export const STYLE = `
:root { --ok: #1e8e3e; --warn: #d98e04; --bad: #c5221f; --ink: #1f2328; --muted: #6b7280; --line: #d8dee4; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header.overall { display: flex; gap: 20px; align-items: flex-start; padding: 18px 28px; border-bottom: 1px solid var(--line); }
header.overall.ok { background: #e6f4ea; } header.overall.warning { background: #fef7e0; } header.overall.failing { background: #fce8e6; }
header .status { min-width: 110px; padding: 10px 14px; border-radius: 8px; color: #fff; font-size: 20px; font-weight: 700; text-align: center; text-transform: uppercase; letter-spacing: .04em; }
header.ok .status { background: var(--ok); } header.warning .status { background: var(--warn); } header.failing .status { background: var(--bad); }
h1 { margin: 0 0 2px; font-size: 20px; } h2 { margin: 28px 0 8px; font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { margin: 18px 0 6px; font-size: 14px; }
.read { margin: 0 0 6px; color: var(--muted); }
.findings { margin: 0; padding-left: 18px; } .findings li.failing { color: var(--bad); font-weight: 600; } .findings li.warning { color: #8a5a00; }
nav { position: sticky; top: 0; z-index: 2; display: flex; gap: 18px; padding: 8px 28px; background: var(--bg); border-bottom: 1px solid var(--line); }
nav a { color: var(--ink); text-decoration: none; font-weight: 600; } nav a:hover { text-decoration: underline; }
main { padding: 0 28px 40px; }
section { scroll-margin-top: 44px; } tr[id], h3[id] { scroll-margin-top: 44px; }
.note { color: var(--muted); margin: 4px 0 10px; }
.muted { color: var(--muted); } .ok-text { color: var(--ok); } .error-text { color: var(--bad); }
code.cmd { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 1px 5px; white-space: nowrap; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; list-style: none; padding: 0; margin: 6px 0 12px; }
.legend li { display: flex; align-items: center; gap: 6px; } .legend small { display: none; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; }
table { border-collapse: collapse; }
table.grid { width: 100%; table-layout: fixed; }
table.grid th, table.grid td { padding: 5px 6px; border-bottom: 1px solid var(--line); vertical-align: middle; text-align: left; }
table.grid thead th { font-size: 12px; color: var(--muted); font-weight: 600; }
table.grid th.schedule { width: 300px; font-weight: 600; overflow-wrap: anywhere; } table.grid th.summary, table.grid td.summary { width: 210px; font-size: 12px; }
.ticks { display: grid; grid-template-columns: repeat(4, 1fr); font-weight: 400; font-size: 11px; color: #9aa4ae; }
.ticks span { border-left: 1px solid var(--line); padding-left: 3px; }
table.grid tbody tr:hover { background: var(--bg); }
.meta { font-size: 12px; font-weight: 400; color: var(--muted); }
.shard { font-size: 12px; font-weight: 400; color: var(--muted); }
.strip { display: grid; gap: 1px; height: 24px; }
.strip.labelled { gap: 3px; justify-content: start; }
.strip.empty { color: var(--muted); font-size: 12px; align-items: center; }
.cell { display: flex; align-items: center; justify-content: center; min-width: 0; overflow: hidden; border-radius: 2px; color: #fff; font-size: 11px; font-weight: 600; white-space: nowrap; text-decoration: none; }
.cell:hover { outline: 2px solid var(--ink); outline-offset: 1px; z-index: 1; }
.k-on_time { background: var(--ok); }
.k-late { background: #f2b01e; color: #3b2a00; }
.k-healed { background: #81c995; color: #0b3d1a; }
.k-missed { background: repeating-linear-gradient(135deg, #c5221f 0 4px, #f28b82 4px 8px); }
.k-failed { background: #8c1d18; }
.k-doubled { background: #8e44ad; }
.k-lost { background: #4a148c; }
.k-running { background: #1a73e8; }
.k-not_yet_due { background: #eef1f4; color: var(--muted); box-shadow: inset 0 0 0 1px #d8dee4; }
.k-not_deployed { background: transparent; color: var(--muted); box-shadow: inset 0 0 0 1px #eef1f4; }
.k-missed span { background: #c5221f; padding: 0 4px; border-radius: 2px; }
.count { display: inline-block; margin: 0 6px 2px 0; white-space: nowrap; }
.k-on_time-text { color: var(--ok); } .k-late-text, .k-healed-text { color: #8a5a00; } .k-missed-text, .k-failed-text, .k-doubled-text, .k-lost-text { color: var(--bad); font-weight: 600; } .k-running-text { color: #1a73e8; }
table.list { width: 100%; margin: 4px 0 8px; } table.list.narrow { width: auto; }
table.list th, table.list td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.list thead th { background: var(--bg); font-size: 12px; color: var(--muted); }
table.list td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.list td.detail { min-width: 160px; max-width: 420px; overflow-wrap: anywhere; font-size: 12px; }
table.list td.when { white-space: nowrap; }
table.list td code.cmd { white-space: normal; overflow-wrap: anywhere; }
table.list tr:target { background: #fff8c5; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.k-not_yet_due, .badge.k-not_deployed { color: var(--muted); }
.badge.k-missed { background: #c5221f; }
.s-ok { background: var(--ok); } .s-warn { background: var(--warn); } .s-error { background: var(--bad); } .s-muted { background: #9aa4ae; }
`;
