// The page of `train -serve`: draw on #pad, and the canvas is sent as a PNG
// to /api/predict, which preprocesses it exactly as `train -predict` does a
// file. No libraries, no build step.
'use strict';

const DEBOUNCE_MS = 150;  // wait this long after the last stroke change,
const MAX_WAIT_MS = 400;  // but no longer than this while drawing on
const LINE_WIDTH = 18;    // pixels of the 280×280 pad; MNIST strokes are ~1/10 of the digit

const pad = document.getElementById('pad');
const ctx = pad.getContext('2d');
const result = document.getElementById('result');
const digitEl = document.getElementById('digit');
const confidenceEl = document.getElementById('confidence');
const statusEl = document.getElementById('status');
const barsEl = document.getElementById('bars');
const seen = document.getElementById('seen');
const fileInput = document.getElementById('file');
const drop = document.getElementById('drop');

// version counts changes to the pad; an answer is shown only if it is for
// the latest one, so a slow reply never overwrites a newer drawing's.
let version = 0;
let timer = 0;
let firstChange = 0; // when the changes the timer waits for began
let inflight = null;
let stroke = null; // {id, x, y} while a pointer is down

const bars = [];
for (let d = 0; d < 10; d++) {
  const li = document.createElement('li');
  li.className = 'bar';
  li.dataset.digit = String(d);
  li.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
  li.querySelector('.label').textContent = String(d);
  barsEl.appendChild(li);
  bars.push(li);
}

function blankPad() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function setState(state, message) {
  result.dataset.state = state;
  result.dataset.version = String(version);
  statusEl.textContent = message || '';
}

function resetResult(state, message) {
  digitEl.textContent = '–';
  confidenceEl.textContent = 'draw a digit';
  for (const li of bars) {
    li.classList.remove('best');
    li.querySelector('.fill').style.width = '0%';
    li.querySelector('.pct').textContent = '';
  }
  seen.getContext('2d').clearRect(0, 0, 28, 28);
  setState(state, message);
}

function show(p) {
  digitEl.textContent = String(p.digit);
  confidenceEl.textContent = (100 * p.probabilities[p.digit]).toFixed(1) + '% sure';
  p.probabilities.forEach((prob, d) => {
    bars[d].querySelector('.fill').style.width = (100 * prob).toFixed(2) + '%';
    bars[d].querySelector('.pct').textContent = (100 * prob).toFixed(1) + '%';
    bars[d].dataset.probability = String(prob);
    bars[d].classList.toggle('best', d === p.digit);
  });
  const img = new ImageData(28, 28);
  p.pixels.forEach((v, i) => {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  });
  seen.getContext('2d').putImageData(img, 0, 0);
  setState('ready');
}

// predict sends body (a PNG or JPEG blob) for pad version v. A body for an
// older version (a pad PNG made while a file was dropped) is not sent, and
// aborts nothing: the request in flight is for a newer version.
async function predict(body, type, v) {
  if (v !== version) return;
  if (inflight) inflight.abort();
  const ctl = new AbortController();
  inflight = ctl;
  try {
    const res = await fetch('/api/predict', {method: 'POST', headers: {'Content-Type': type}, body, signal: ctl.signal});
    const answer = await res.json();
    if (v !== version) return;
    if (!res.ok) {
      resetResult('error', answer.error || res.statusText);
      return;
    }
    show(answer);
  } catch (err) {
    if (err.name !== 'AbortError' && v === version) resetResult('error', 'The server did not answer: ' + err.message);
  } finally {
    if (inflight === ctl) inflight = null;
  }
}

function padChanged() {
  version++;
  setState('pending');
  const now = performance.now();
  if (!timer) firstChange = now;
  clearTimeout(timer);
  timer = setTimeout(sendPad, Math.max(0, Math.min(DEBOUNCE_MS, firstChange + MAX_WAIT_MS - now)));
}

function sendPad() {
  timer = 0;
  const v = version;
  pad.toBlob((blob) => blob && predict(blob, 'image/png', v), 'image/png');
}

// point maps a pointer event to pad pixels (the pad may be shown smaller).
function point(e) {
  const r = pad.getBoundingClientRect();
  return {x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height};
}

function line(from, to) {
  ctx.strokeStyle = '#000';
  ctx.lineWidth = LINE_WIDTH;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

pad.addEventListener('pointerdown', (e) => {
  if (e.pointerType === 'mouse' && e.button !== 0) return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  const p = point(e);
  stroke = {id: e.pointerId, ...p};
  line(p, p);
  padChanged();
});

pad.addEventListener('pointermove', (e) => {
  if (!stroke || e.pointerId !== stroke.id) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) {
    const p = point(ev);
    line(stroke, p);
    stroke.x = p.x;
    stroke.y = p.y;
  }
  padChanged();
});

function endStroke(e) {
  if (stroke && e.pointerId === stroke.id) stroke = null;
}
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);

document.getElementById('clear').addEventListener('click', () => {
  version++;
  clearTimeout(timer);
  timer = 0;
  if (inflight) inflight.abort();
  blankPad();
  resetResult('empty');
});

// MAX_UPLOAD_PIXELS is the most pixels the server decodes (-serve's limit,
// 2048×2048; a larger image gets a 413). The input ends up 28×28, so a
// larger image, a 12-megapixel phone photo say, is scaled down here first.
const MAX_UPLOAD_PIXELS = 2048 * 2048;

// useFile shows an uploaded or dropped file on the pad, fitted, and
// classifies it: as sent (the server reads it as -predict reads a file),
// or, over MAX_UPLOAD_PIXELS, scaled down to fit (drawn by the browser,
// which turns a photo upright as its EXIF orientation says). A file the
// browser cannot show is sent as it is, for the server to say why it
// cannot read it either.
function useFile(file) {
  if (!file) return;
  version++;
  clearTimeout(timer);
  timer = 0;
  const v = version;
  setState('pending');
  const type = file.type || 'application/octet-stream';
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    URL.revokeObjectURL(url);
    if (v !== version) return; // drawn over or replaced meanwhile
    blankPad();
    const s = Math.min(pad.width / img.naturalWidth, pad.height / img.naturalHeight);
    const w = img.naturalWidth * s, h = img.naturalHeight * s;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    const pixels = img.naturalWidth * img.naturalHeight;
    if (pixels <= MAX_UPLOAD_PIXELS) {
      predict(file, type, v);
      return;
    }
    const k = Math.sqrt(MAX_UPLOAD_PIXELS / pixels);
    const small = document.createElement('canvas');
    small.width = Math.max(1, Math.floor(img.naturalWidth * k));
    small.height = Math.max(1, Math.floor(img.naturalHeight * k));
    small.getContext('2d').drawImage(img, 0, 0, small.width, small.height);
    // A PNG stays a PNG, keeping its transparency; anything else (a photo)
    // goes as a JPEG, a fraction of a PNG's size.
    const out = type === 'image/png' ? 'image/png' : 'image/jpeg';
    small.toBlob((blob) => predict(blob || file, blob ? out : type, v), out, 0.92);
  };
  img.onerror = () => {
    URL.revokeObjectURL(url);
    predict(file, type, v);
  };
  img.src = url;
}

fileInput.addEventListener('change', () => {
  useFile(fileInput.files[0]);
  fileInput.value = '';
});
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  useFile(e.dataTransfer.files[0]);
});

// The model's facts, from the metadata -save wrote into the file.
function fact(dl, name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value === undefined || value === '' ? '—' : value;
  dl.append(dt, dd);
}

function showModel(info) {
  const m = info.metadata || {};
  const dl = document.getElementById('facts');
  const num = (s, f) => (s === undefined || isNaN(Number(s)) ? undefined : f(Number(s)));
  fact(dl, 'Test accuracy', num(m.test_accuracy, (x) => (100 * x).toFixed(2) + '%'));
  fact(dl, 'Test loss', num(m.test_loss, (x) => x.toFixed(4)));
  fact(dl, 'Epochs', m.epochs && m.epochs + (m.batch_size ? ' (batch ' + m.batch_size + ')' : ''));
  fact(dl, 'Saved', info.modified ? new Date(info.modified).toLocaleString() : undefined);
  fact(dl, 'Trained on', m.device);
  fact(dl, 'Serving on', info.device);
  fact(dl, 'File', info.file + (m.version ? ' (build ' + m.version.slice(0, 12) + ')' : ''));
  if (info.confusion) drawConfusion(info.confusion);
}

// drawConfusion draws the matrix as a heat map: the diagonal in green by
// the share of its row classified right, mistakes in red by their count
// relative to the largest mistake, so that rare ones still show.
function drawConfusion(c) {
  let worst = 1;
  c.forEach((row, i) => row.forEach((n, j) => { if (i !== j) worst = Math.max(worst, n); }));
  const table = document.createElement('table');
  const head = table.insertRow();
  head.appendChild(document.createElement('th'));
  for (let j = 0; j < 10; j++) {
    const th = document.createElement('th');
    th.textContent = String(j);
    head.appendChild(th);
  }
  c.forEach((row, i) => {
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.textContent = String(i);
    tr.appendChild(th);
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((n, j) => {
      const td = tr.insertCell();
      td.textContent = n ? String(n) : '';
      td.title = `true ${i}, predicted ${j}: ${n} of ${total}`;
      if (i === j) {
        td.className = 'diag';
        td.style.background = `rgba(var(--good), ${(0.35 + 0.65 * n / total).toFixed(3)})`;
      } else if (n > 0) {
        td.style.background = `rgba(var(--bad), ${(0.12 + 0.88 * Math.sqrt(n / worst)).toFixed(3)})`;
      }
    });
  });
  const box = document.getElementById('confusion');
  box.replaceChildren(table);
}

async function loadModel() {
  try {
    const res = await fetch('/api/model');
    if (!res.ok) throw new Error((await res.json()).error || res.statusText);
    showModel(await res.json());
  } catch (err) {
    fact(document.getElementById('facts'), 'Error', err.message);
  }
}

blankPad();
resetResult('empty');
loadModel();
