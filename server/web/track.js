/* Citizen tracking: live over Server-Sent Events, polling if they fail. No personal data here. */
"use strict";
(function () {
  var token = document.getElementById("track").getAttribute("data-token");
  var $ = function (id) { return document.getElementById(id); };
  var DOSSIER = { received: "Đã tiếp nhận hồ sơ", processing: "Đang xử lý", needs_documents: "Cần bổ sung giấy tờ — mời bạn liên hệ quầy",
    ready: "Đã có kết quả — mời bạn đến nhận", returned: "Đã trả kết quả" };
  var last = null, audio = null, soundOn = false, notifyOn = false;
  // "your turn is near": alert once when this many people or fewer are ahead ([notify] near_ahead)
  var near = Number(document.getElementById("track").getAttribute("data-near")) || 0, nearAlerted = false;
  function time(iso) {
    var d = new Date(iso);
    return d.toLocaleString("vi-VN", { hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" });
  }
  function set(id, text) { $(id).textContent = text; }
  /* The browser's own notification, once the citizen allowed it; phones whose browser only shows
     notifications from a service worker (Chrome on Android) throw here: the sound and vibration stay. */
  function notify(title, body) {
    if (!notifyOn || !window.Notification || Notification.permission !== "granted") return;
    try { new Notification(title, { body: body, tag: "luot-turn", renotify: true, lang: "vi" }); } catch (e) {}
  }
  function alertCitizen(title, body) {
    notify(title, body);
    if (navigator.vibrate) { try { navigator.vibrate([400, 200, 400, 200, 400]); } catch (e) {} }
    if (soundOn && audio) {
      [0, 0.35, 0.7].forEach(function (at) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
        g.gain.setValueAtTime(0.3, audio.currentTime + at); g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + at + 0.3);
        o.start(audio.currentTime + at); o.stop(audio.currentTime + at + 0.3);
      });
    }
  }
  function render(v) {
    var state = $("state"), s = v.status, cls = "state", head, detail = "";
    if (s === "waiting") {
      head = v.ahead === 0 ? "Sắp đến lượt bạn" : "Đang chờ";
      detail = "Hãy ở gần khu vực chờ và theo dõi màn hình. (Please stay near the waiting area.)";
      if (v.moved_to) {
        var m = v.moved_to;
        detail = m.counter ? "Số của bạn đã được chuyển sang quầy " + m.counter + ", vẫn giữ thứ tự chờ. (Your number was moved to counter " + m.counter + "; you keep your place.)"
          : "Số của bạn đã được chuyển sang nhóm " + m.group_name + ", vẫn giữ thứ tự chờ. (Your number was moved to " + (m.group_name_en || m.group_name) + "; you keep your place.)";
      }
    } else if (s === "called") {
      cls += " called"; head = "Mời bạn đến quầy " + v.counter;
      detail = "Please go to counter " + v.counter + (v.calls > 1 ? " — gọi lần " + v.calls : "");
    } else if (s === "serving") {
      cls += " serving"; head = "Đang được phục vụ tại quầy " + v.counter; detail = "Being served at counter " + v.counter;
    } else if (s === "done") {
      cls += " ended"; head = "Đã phục vụ xong. Cảm ơn bạn!"; detail = "Served. Thank you!";
    } else if (s === "no_show") {
      cls += " missed"; head = "Bạn đã bị gọi nhỡ"; detail = "Số đã được gọi nhưng bạn không có mặt. Xin hỏi quầy hướng dẫn để được giúp.";
    } else if (s === "cancelled") {
      cls += " ended"; head = "Vé đã huỷ"; detail = "This ticket was cancelled.";
    } else {
      cls += " ended"; head = "Vé đã hết hiệu lực"; detail = "Hết ngày làm việc. This ticket has expired.";
    }
    state.className = cls; set("headline", head); set("detail", detail);
    if (v.group_name) set("group", v.group_name);  // a transfer may change the group
    var waiting = s === "waiting";
    $("facts").hidden = !waiting;
    set("ahead", v.ahead === null || v.ahead === undefined ? "–" : v.ahead + " người");
    // the range or clock time the server words (wait_text); older servers sent only wait_minutes
    set("wait", v.wait_text ? v.wait_text : (v.wait_minutes === null || v.wait_minutes === undefined ? "–" : (v.wait_minutes < 1 ? "dưới 1 phút" : "~" + Math.round(v.wait_minutes) + " phút")));
    var list = $("dossier-list");
    list.textContent = "";
    (v.dossiers || []).forEach(function (d) {
      var h = document.createElement("p"); h.innerHTML = ""; h.appendChild(document.createTextNode("Mã hồ sơ: "));
      var b = document.createElement("strong"); b.textContent = d.code; h.appendChild(b); list.appendChild(h);
      if (d.appointment) {  // the receipt's promise, followed to its date
        var due = document.createElement("p"); due.className = "due";
        var parts = d.appointment.split("-"), left = d.days_left;
        var when = left === null || left === undefined ? "" : left > 0 ? " (còn " + left + " ngày)" : left === 0 ? " (hôm nay)" : " (đã quá hẹn " + (-left) + " ngày)";
        due.textContent = "Hẹn trả kết quả: " + parts[2] + "/" + parts[1] + "/" + parts[0] + when;
        if (left !== null && left !== undefined && left < 0) due.className += " late";
        list.appendChild(due);
      }
      var ol = document.createElement("ol");
      d.timeline.forEach(function (step, i) {
        var li = document.createElement("li"); if (i === d.timeline.length - 1) li.className = "now";
        li.appendChild(document.createTextNode(DOSSIER[step.status] || step.status));
        var t = document.createElement("time"); t.dateTime = step.at; t.textContent = time(step.at); li.appendChild(t);
        ol.appendChild(li);
      });
      list.appendChild(ol);
    });
    $("dossiers").hidden = !(v.dossiers && v.dossiers.length);
    if (s === "done" && (!last || last.status !== "done")) rating.check();
    if (s === "called" && (!last || last.status !== "called" || last.calls !== v.calls)) {
      alertCitizen("Mời bạn đến quầy " + v.counter, "Số " + v.number + " — Please go to counter " + v.counter + ".");
    }
    var isNear = waiting && near > 0 && typeof v.ahead === "number" && v.ahead <= near;
    if (isNear && !nearAlerted && last) {  // a change seen while the page is open, not the state it opened in
      alertCitizen("Sắp đến lượt bạn", (v.ahead === 0 ? "Bạn là người tiếp theo" : "Còn " + v.ahead + " người trước bạn") +
        " (số " + v.number + "). " + (v.ahead === 0 ? "You are next." : v.ahead + " ahead of you."));
    }
    if (isNear) nearAlerted = true;
    document.title = (s === "called" ? "Mời đến quầy " + v.counter + " – " : "") + "Số " + v.number;
    set("updated", "Cập nhật lúc " + new Date().toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" }) + ".");
    last = v;
  }
  /* The rating after service: asked once, only when the server says this ticket may still be rated. */
  var rating = (function () {
    var chosen = 0, scale = 5, url = "/api/v1/track/" + encodeURIComponent(token) + "/feedback";
    function note(text) { set("rating-note", text); }
    function close(text) { $("levels").hidden = true; $("reasons").hidden = true; note(text); }
    function send(level) {
      var reasons = [];
      Array.prototype.forEach.call($("reasons").querySelectorAll("input:checked"), function (box) { reasons.push(box.value); });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.onload = function () {
        if (xhr.status === 200) { close("Cảm ơn ông/bà đã đánh giá! (Thank you for your rating.)"); return; }
        var answer = {}; try { answer = JSON.parse(xhr.responseText); } catch (e) {}
        close(answer.message || "Chưa gửi được đánh giá, xin thử lại sau.");
      };
      xhr.onerror = function () { note("Chưa gửi được đánh giá (mất kết nối). Xin thử lại."); };
      xhr.send(JSON.stringify({ rating: scale === 5 ? level : level - 1, scale: scale, reasons: level < 3 ? reasons : [] }));
    }
    Array.prototype.forEach.call($("levels").querySelectorAll("button"), function (button) {
      button.onclick = function () {
        chosen = Number(button.getAttribute("data-level"));
        Array.prototype.forEach.call($("levels").querySelectorAll("button"), function (b) { b.setAttribute("aria-pressed", String(b === button)); });
        if (scale === 5 && chosen < 3) { $("reasons").hidden = false; $("reasons").querySelector("input").focus(); }
        else send(chosen);
      };
    });
    $("send-rating").onclick = function () { if (chosen) send(chosen); };
    return { check: function () {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url);
      xhr.onload = function () {
        if (xhr.status !== 200) return;
        var state = JSON.parse(xhr.responseText);
        scale = state.scale === 4 ? 4 : 5;
        $("levels").querySelector('[data-level="1"]').hidden = scale !== 5;
        if (state.open) { $("rating").hidden = false; }
        else if (state.rated) { $("rating").hidden = false; close("Vé này đã được đánh giá. Cảm ơn ông/bà! (Already rated.)"); }
      };
      xhr.send();
    } };
  })();
  render(JSON.parse($("data").textContent));
  var polling = null;
  function poll() {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/api/v1/track/" + encodeURIComponent(token));
    xhr.onload = function () { if (xhr.status === 200) render(JSON.parse(xhr.responseText)); };
    xhr.send();
  }
  function startPolling() { if (!polling) polling = setInterval(poll, 10000); }
  if (window.EventSource) {
    var source = new EventSource("/api/v1/track/" + encodeURIComponent(token) + "/stream");
    var failures = 0;
    source.addEventListener("ticket", function (ev) { failures = 0; if (polling) { clearInterval(polling); polling = null; } render(JSON.parse(ev.data)); });
    source.onerror = function () { failures += 1; if (failures >= 2) startPolling(); };
  } else { startPolling(); }
  /* Opt-in (a browser only allows sound and notifications after a tap): the sound, then the
     notification permission. Nothing is sent anywhere; the alerts come from this open page. */
  $("sound").onclick = function () {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume(); soundOn = true;
    } catch (e) { soundOn = false; }
    $("sound").disabled = true;
    $("sound").textContent = soundOn ? "Đã bật báo khi đến lượt (alerts on)" : "Máy không phát được âm báo (no sound)";
    if (!window.Notification) {
      set("alert-note", "Trình duyệt này không hiện thông báo; giữ trang mở để nghe âm báo. (This browser shows no notifications; keep the page open to hear the alert.)");
      return;
    }
    /* A browser allows notifications only on a secure page (https, or this computer itself); a
       centre's plain-http LAN address is not one, so it answers "denied" without asking the
       citizen. Say why, and that the sound and vibration (which need no secure page) still work. */
    if (window.isSecureContext === false) {
      set("alert-note", "Trang này không dùng kết nối bảo mật (https) nên trình duyệt không cho hiện thông báo; âm báo và rung vẫn hoạt động khi trang còn mở. " +
        "(Notifications need a secure https page, which this is not; the sound and vibration still work while this page is open.)");
      return;
    }
    Notification.requestPermission().then(function (answer) {
      notifyOn = answer === "granted";
      set("alert-note", notifyOn ? "Sẽ báo khi còn " + near + " người trước bạn và khi đến lượt. (Alerts on.)"
        : "Trình duyệt đã chặn thông báo của trang này; âm báo và rung vẫn hoạt động khi trang còn mở. (Notifications are blocked for this page; the sound and vibration still work while it is open.)");
    });
  };
})();
