/* The backstop dashboard: a snapshot, then deltas, over /ws/dashboard. Money arrives as
 * exact decimal strings and is shown as sent; it is parsed to numbers only to draw charts. */
"use strict";

const ADL_COLORS = ["#3b4656", "#3ecf8e", "#a3d94a", "#ffb547", "#ff8a47", "#ff5c6c"];
const MAX_ROWS = 200;
const state = {funds: new Map(), feed: [], fundEvents: [], agg: null, marginLabels: [], serverOffset: 0};

const $ = id => document.getElementById(id);
const timeOf = ts => new Date(Number(ts)).toISOString().slice(11, 19);
const signClass = s => (s && s.startsWith("-")) ? "neg" : (s && s !== "0" ? "pos" : "");

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fillTable(id, rows, toCells, fresh) {
  const body = $(id).querySelector("tbody");
  const trs = rows.map((row, i) => {
    const tr = document.createElement("tr");
    tr.replaceChildren(...toCells(row));
    if (fresh && i < fresh) tr.className = "fresh";
    return tr;
  });
  body.replaceChildren(...trs);
  $(id + "-empty").style.display = rows.length ? "none" : "";
  $(id).dataset.count = rows.length;
}

function serverNow() { return Date.now() + state.serverOffset; }

/* --- insurance funds ------------------------------------------------------------------ */
function setFunds(list) {
  state.funds.clear();
  for (const f of list) {
    state.funds.set(f.fundId, {...f, points: f.points.map(([t, b]) => [Number(t), Number(b)])});
  }
}

function renderFunds() {
  const grid = $("funds");
  const funds = [...state.funds.values()].sort((a, b) =>
    (b.points.length > 0) - (a.points.length > 0) || Number(b.balance) - Number(a.balance) ||
    a.fundId.localeCompare(b.fundId));
  const cards = funds.map(f => {
    const card = document.createElement("div");
    card.className = "fund" + (f.points.length ? "" : " quiet");
    card.dataset.fund = f.fundId;
    const name = document.createElement("div");
    name.className = "name";
    name.innerHTML = "<span></span><span class='adl'></span>";
    name.children[0].textContent = `${f.instFamily} · ${f.ccy}`;
    name.children[1].textContent = f.adlState ? f.adlState.replace("_start", "") : "";
    const bal = document.createElement("div");
    bal.className = "bal";
    bal.textContent = f.balance;
    const chart = document.createElement("div");
    chart.className = "chart";
    card.append(name, bal, chart);
    charts.stepLineChart(chart, f.points, serverNow());
    return card;
  });
  grid.replaceChildren(...cards);
  const active = funds.filter(f => f.points.length).length;
  $("fund-summary").textContent = `${funds.length} funds, ${active} with movements`;
}

/* --- tables ---------------------------------------------------------------------------- */
function feedCells(r) {
  if (r.kind === "adl") {
    return [cell(timeOf(r.ts)), cell("ADL", "neg"), cell(r.uid), cell(r.instId), cell(r.sz), cell(r.px),
            cell(""), cell(`vs uid ${r.liquidatedUid}, upl given up ${r.uplTaken} ${r.ccy}`)];
  }
  if (r.kind === "haircut") {
    return [cell(timeOf(r.ts)), cell("ADL haircut", "neg"), cell(r.uid), cell(r.instId), cell(""), cell(""),
            cell(""), cell(`for uid ${r.liquidatedUid}, ${r.amt} of ${r.profit} ${r.ccy} profit, position kept`)];
  }
  const delta = r.fromFund && r.fromFund !== "0" ? "-" + r.fromFund : (r.toFund ? "+" + r.toFund : "");
  return [cell(timeOf(r.ts)), cell(r.category.replace("_liquidation", ""), "warn"), cell(r.uid),
          cell(r.instId), cell(r.sz), cell(r.bkPx), cell(delta, signClass(delta)),
          cell(`${r.mgnMode}, via ${r.route}, mark ${r.markPx}, fee ${r.fee || "?"}`)];
}

function fundEventCells(r) {
  return [cell(timeOf(r.ts)), cell(r.instFamily), cell(r.type), cell(r.amt, signClass(r.amt)),
          cell(`${r.balance} ${r.ccy}`)];
}

function queueCells(r) {
  return [cell(r.uid), cell(r.instId), cell(r.pos), cell(r.adl, "adl" + r.adl), cell(r.upl, signClass(r.upl)),
          cell(r.mgnRatio ? (Number(r.mgnRatio) * 100).toFixed(1) + "%" : ""), cell(r.liqPx)];
}

/* --- aggregates ------------------------------------------------------------------------ */
function renderAggregates(fresh) {
  const agg = state.agg;
  if (!agg) return;
  fillTable("adl-queue", agg.adlQueue, queueCells);
  charts.barChart($("adl-dist"), agg.adlDistribution.map(r => r.instId), agg.adlDistribution.map(r => r.counts),
                  {colors: ADL_COLORS, legend: ["adl 0", "1", "2", "3", "4", "5"], empty: "no open positions"});
  charts.barChart($("oi"), agg.openInterest.map(r => r.instId), agg.openInterest.map(r => Number(r.oi)),
                  {empty: "no open interest"});
  const hist = agg.marginHistogram;
  charts.barChart($("margin-hist"), hist.labels, hist.counts,
                  {colors: ["#ff5c6c"], empty: "no positions"});
}

function renderAll(freshFeed, freshEvents) {
  renderFunds();
  fillTable("feed", state.feed, feedCells, freshFeed);
  fillTable("fund-events", state.fundEvents, fundEventCells, freshEvents);
  renderAggregates();
}

/* --- messages -------------------------------------------------------------------------- */
function onSnapshot(m) {
  state.serverOffset = Number(m.ts) - Date.now();
  setFunds(m.funds);
  state.feed = m.feed.slice().reverse();
  state.fundEvents = m.fundEvents.slice().reverse();
  state.agg = m;
  renderAll(0, 0);
}

function onDelta(m) {
  state.serverOffset = Number(m.ts) - Date.now();
  for (const [fundId, ts, bal] of m.fundPoints) {
    const f = state.funds.get(fundId);
    if (f) { f.points.push([Number(ts), Number(bal)]); if (f.points.length > 600) f.points.shift(); }
  }
  for (const b of m.funds) {
    const f = state.funds.get(b.fundId);
    if (f) { f.balance = b.balance; f.adlState = b.adlState; }
  }
  state.feed = m.feed.slice().reverse().concat(state.feed).slice(0, MAX_ROWS);
  state.fundEvents = m.fundEvents.slice().reverse().concat(state.fundEvents).slice(0, MAX_ROWS);
  state.agg = m;
  renderAll(m.feed.length, m.fundEvents.length);
}

let socket = null;
setInterval(() => { if (socket && socket.readyState === 1) socket.send("ping"); }, 20000);

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = socket = new WebSocket(`${proto}://${location.host}/ws/dashboard`);
  ws.onopen = () => { $("status").className = "status live"; $("status").textContent = "live"; };
  ws.onmessage = (msg) => {
    if (msg.data === "pong") return;
    const m = JSON.parse(msg.data);
    if (m.type === "snapshot") onSnapshot(m); else if (m.type === "delta") onDelta(m);
    document.body.dataset.messages = String(Number(document.body.dataset.messages || 0) + 1);
  };
  ws.onclose = () => {
    $("status").className = "status down"; $("status").textContent = "reconnecting…";
    setTimeout(connect, 1000);
  };
}

setInterval(() => { $("clock").textContent = new Date(serverNow()).toISOString().slice(0, 19).replace("T", " ") + " UTC"; }, 1000);
connect();
