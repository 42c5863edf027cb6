// The TV board's live part: follows the board's event stream (server-sent events),
// replaces the part of the page that changed (rendered and escaped by the server),
// redraws the chart and counts down to the cut-off. No data is computed here.
(function () {
  'use strict';
  // The same colours as .team-0 … .team-9 in board.css.
  var COLOURS = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6',
    '#ec4899', '#06b6d4', '#84cc16', '#f97316', '#64748b'];
  var body = document.body;
  // The server's clock minus this screen's: the countdown follows the server.
  var offset = Number(body.dataset.now) - Date.now();
  var chart = null;
  // The chart's times are shifted to Asia/Shanghai and read as UTC, so that its ticks,
  // at multiples of an hour or a day, fall on Shanghai's hours and midnights.
  var SHANGHAI = 8 * 3600 * 1000;
  var HOUR = 3600 * 1000;
  var STEPS = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR, 168 * HOUR];
  var dayAndTime = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'UTC', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'
  });
  var dayOnly = new Intl.DateTimeFormat('zh-CN', { timeZone: 'UTC', month: 'numeric', day: 'numeric' });

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function status(text) {
    var el = document.getElementById('status');
    el.textContent = text;
    el.hidden = !text;
  }

  // More teams than this: no legend under the chart (the team list has the colours).
  var LEGEND_TEAMS = 8;

  // A team's name in the legend, cut to fit.
  function short(name) {
    var chars = Array.from(name);
    return chars.length > 8 ? chars.slice(0, 7).join('') + '…' : name;
  }

  function legendLabels(c) {
    return Chart.defaults.plugins.legend.labels.generateLabels(c).map(function (label) {
      label.text = short(label.text);
      return label;
    });
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }

  function countdown(ms) {
    var s = Math.floor(Math.max(ms, 0) / 1000);
    var days = Math.floor(s / 86400);
    var clock = pad(Math.floor(s / 3600) % 24) + ':' + pad(Math.floor(s / 60) % 60) + ':' + pad(s % 60);
    return days > 0 ? days + ' 天 ' + clock : clock;
  }

  function tick() {
    var el = document.getElementById('countdown');
    if (!el || el.dataset.running !== 'true') { return; }
    var left = Number(el.dataset.cutoff) - (Date.now() + offset);
    el.textContent = left > 0 ? countdown(left) : '已截止';
  }

  function datasets(series) {
    return series.map(function (s) {
      var colour = COLOURS[s.slot % COLOURS.length];
      return {
        label: s.name,
        data: s.points.map(function (p) { return { x: p[0] + SHANGHAI, y: p[1] }; }),
        borderColor: colour,
        backgroundColor: colour,
        borderWidth: 4,
        pointRadius: 0,
        stepped: true
      };
    });
  }

  // The time axis: from the contest's start to now (or the cut-off), ticked so that
  // about six labels fit.
  function timeAxis(series, x) {
    var points = series.length ? series[0].points : [];
    if (!points.length) { return; }
    var first = points[0][0] + SHANGHAI;
    var last = points[points.length - 1][0] + SHANGHAI;
    var step = STEPS.find(function (s) { return (last - first) / s <= 6; }) || STEPS[STEPS.length - 1];
    x.min = first;
    x.max = Math.max(last, first + HOUR);
    x.ticks.stepSize = step;
    x.ticks.callback = function (v) { return (step >= 24 * HOUR ? dayOnly : dayAndTime).format(v); };
  }

  function draw(series) {
    if (typeof Chart === 'undefined') { return; }
    if (chart) {
      chart.data.datasets = datasets(series);
      timeAxis(series, chart.options.scales.x);
      chart.options.plugins.legend.display = series.length <= LEGEND_TEAMS;
      chart.update('none');
      return;
    }
    var size = parseFloat(getComputedStyle(body).fontSize);
    Chart.defaults.font.size = Math.round(size * 0.7);
    Chart.defaults.font.family = getComputedStyle(body).fontFamily;
    Chart.defaults.color = cssVar('--muted');
    var grid = { color: cssVar('--line') };
    var options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', grid: grid, ticks: { autoSkip: true, maxRotation: 0 } },
        y: { beginAtZero: true, grid: grid, ticks: { precision: 0 } }
      },
      plugins: {
        legend: {
          display: series.length <= LEGEND_TEAMS,
          position: 'bottom',
          labels: { boxWidth: Math.round(size * 0.8), boxHeight: 4, generateLabels: legendLabels }
        },
        tooltip: { enabled: false }
      }
    };
    timeAxis(series, options.scales.x);
    var data = { datasets: datasets(series) };
    chart = new Chart(document.getElementById('chart'), { type: 'line', data: data, options: options });
  }

  // A closed stream: the link was replaced (404, stop), or the service is away (retry).
  function closed() {
    fetch(location.href, { method: 'HEAD', cache: 'no-store' }).then(function (r) {
      if (r.status === 404) {
        status('看板链接已失效，请向管理员索取新链接');
      } else {
        setTimeout(connect, 5000);
      }
    }, function () { setTimeout(connect, 5000); });
  }

  function connect() {
    var events = new EventSource(body.dataset.events);
    events.addEventListener('board', function (e) {
      var data = JSON.parse(e.data);
      offset = data.now - Date.now();
      document.getElementById('live').innerHTML = data.html;
      draw(data.series);
      tick();
      status('');
      body.dataset.updated = String(data.now);
    });
    events.onerror = function () {
      if (events.readyState === EventSource.CLOSED) {
        events.close();
        status('连接中断，正在重试…');
        closed();
      } else {
        status('连接中断，正在重连…');
      }
    };
  }

  draw(JSON.parse(document.getElementById('chart').dataset.series));
  tick();
  setInterval(tick, 1000);
  connect();
}());
