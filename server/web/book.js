/* The citizen's booking page: group -> now or a slot -> phone and one-time code -> the number, its
   QR and the tracking link. Plain DOM, no library; every refusal is the server's own words. */
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var choice = { group: null, kind: null, slot: null, slotText: "" };
  var busy = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function en(text) { var s = el("span", "en", text); s.lang = "en"; return s; }
  function show(id) {
    ["step-group", "step-when", "step-phone", "step-done"].forEach(function (s) { $(s).hidden = s !== id; });
    var h = $(id).querySelector("h2");
    if (h) { h.tabIndex = -1; h.focus(); }
  }
  function problem(vi, english) {
    var box = $("error");
    box.textContent = vi || "";
    if (english) { box.appendChild(document.createTextNode(" ")); box.appendChild(en(english)); }
    box.hidden = !vi;
  }
  function call(method, url, body) {
    busy = true;
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    return fetch(url, options).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (answer) {
        busy = false;
        if (!r.ok) {
          var error = new Error(answer.error || String(r.status));
          error.vi = answer.message || "Có lỗi, xin thử lại sau ít phút.";
          error.en = answer.message_en || "Something went wrong; try again in a few minutes.";
          throw error;
        }
        return answer;
      });
    }, function () {
      busy = false;
      var error = new Error("offline");
      error.vi = "Không kết nối được với trung tâm. Hãy kiểm tra mạng và thử lại.";
      error.en = "Cannot reach the centre. Check your connection and try again.";
      throw error;
    });
  }
  function refused(error) { problem(error.vi, error.en); }
  function groupName(code) {
    for (var i = 0; i < data.groups.length; i++) if (data.groups[i].code === code) return data.groups[i];
    return { name: code, name_en: "" };
  }
  function dayText(iso) {
    var p = iso.split("-"), d = new Date(Number(p[0]), Number(p[1]) - 1, Number(p[2]));
    var names = ["CN", "Th 2", "Th 3", "Th 4", "Th 5", "Th 6", "Th 7"];
    return names[d.getDay()] + " " + p[2] + "/" + p[1];
  }

  // 1. the group
  data.groups.forEach(function (g) {
    var b = el("button", "choice", g.name);
    b.type = "button";
    if (g.name_en) b.appendChild(en(g.name_en));
    b.addEventListener("click", function () {
      choice.group = g.code;
      $("chosen-group").textContent = g.name;
      problem("");
      loadNow();
      loadSlots(null);
      show("step-when");
    });
    $("groups").appendChild(b);
  });

  // 2. now, or a day and a slot
  function slotsNote(text) { $("slots").replaceChildren(el("p", "slots-note", text)); }
  function loadSlots(day) {
    var url = "/api/v1/bookings/slots?group=" + encodeURIComponent(choice.group) + (day ? "&day=" + day : "");
    slotsNote("Đang tải… (Loading…)");
    call("GET", url).then(function (answer) {
      $("now-note").textContent = "Lấy số từ " + answer.open_from + " đến " + answer.open_until +
        "; đến trễ quá " + answer.grace_minutes + " phút sau khi tới lượt thì số bị hủy.";
      var days = $("days");
      days.textContent = "";
      answer.days.forEach(function (d) {
        var b = el("button", "day", dayText(d));
        b.type = "button";
        b.setAttribute("aria-pressed", d === answer.day ? "true" : "false");
        b.addEventListener("click", function () { loadSlots(d); });
        days.appendChild(b);
      });
      var slots = $("slots");
      slots.textContent = "";
      if (!answer.enabled) { slotsNote("Trung tâm chưa nhận đặt lịch. (Booking is off.)"); return; }
      if (!answer.slots.length) { slotsNote("Ngày này không còn khung giờ. (No times left this day.)"); return; }
      answer.slots.forEach(function (s) {
        var b = el("button", "slot" + (s.left ? "" : " full"), s.time);
        b.type = "button";
        b.appendChild(el("small", null, s.left ? "còn " + s.left + " chỗ" : "hết chỗ"));
        b.disabled = !s.left;
        b.addEventListener("click", function () {
          choose("appointment", s.slot, "Hẹn " + s.time + ", " + dayText(answer.day));
        });
        slots.appendChild(b);
      });
    }, function (error) { $("slots").textContent = ""; refused(error); });
  }
  /* Whether a number in today's line can be taken now, before the citizen gives a phone. */
  function loadNow() {
    $("now").disabled = false;
    $("now-refused").hidden = true;
    call("GET", "/dat-so/now?group=" + encodeURIComponent(choice.group)).then(function (answer) {
      if (answer.ok) return;
      $("now").disabled = true;
      $("now-refused").textContent = answer.message + " ";
      $("now-refused").appendChild(en(answer.message_en));
      $("now-refused").hidden = false;
    }, function () {});
  }
  $("now").addEventListener("click", function () { choose("remote", null, "Lấy số ngay hôm nay"); });
  function choose(kind, slot, text) {
    choice.kind = kind; choice.slot = slot; choice.slotText = text;
    $("chosen-all").textContent = groupName(choice.group).name + " · " + text;
    problem("");
    show("step-phone");
    $("phone").focus();
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-back]"), function (b) {
    b.addEventListener("click", function () { problem(""); show(b.getAttribute("data-back")); });
  });

  // 3. the phone and its one-time code
  function sendCode() {
    if (busy) return;
    call("POST", "/api/v1/bookings/code", { phone: $("phone").value }).then(function () {
      problem("");
      $("code-form").hidden = false;
      $("otp").value = "";
      $("otp").focus();
    }, refused);
  }
  $("phone-form").addEventListener("submit", function (e) { e.preventDefault(); sendCode(); });
  $("resend").addEventListener("click", sendCode);
  $("code-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (busy) return;
    var body = { phone: $("phone").value, code: $("otp").value.trim(), group: choice.group, kind: choice.kind };
    if (choice.slot) body.slot = choice.slot;
    call("POST", "/api/v1/bookings", body).then(done, refused);
  });

  // 4. what the citizen keeps
  function fact(dt, dd) {
    var d = el("div"); d.appendChild(el("dt", null, dt)); d.appendChild(el("dd", null, dd)); return d;
  }
  function done(b) {
    problem("");
    var facts = $("done-facts");
    facts.textContent = "";
    $("done-group").textContent = groupName(b.group).name;
    var title = $("t-done");
    title.textContent = b.kind === "remote" ? "Bạn đã có số " : "Bạn đã đặt lịch hẹn ";
    title.appendChild(en(b.kind === "remote" ? "You have a number" : "Your appointment is booked"));
    if (b.kind === "remote") {
      $("done-kind").textContent = "Số trực tuyến của bạn (Your remote number)";
      $("done-number").textContent = b.number;
      facts.appendChild(fact("Người đang chờ trước bạn", b.ticket ? b.ticket.ahead + " người" : "–"));
      facts.appendChild(fact("Thời gian chờ dự kiến", b.ticket && b.ticket.wait_text ? b.ticket.wait_text : "–"));
      $("done-how").textContent = "Đến trung tâm, quét mã QR hoặc nhập mã tại ki-ốt (\"Tôi có số hẹn / số trực tuyến\"). " +
        "Số chỉ được gọi sau khi bạn đã đến. (At the kiosk, scan the QR or type the code: you are called only once checked in.)";
    } else {
      $("done-kind").textContent = "Lịch hẹn của bạn (Your appointment)";
      $("done-number").textContent = b.slot_time;
      facts.appendChild(fact("Ngày hẹn", dayText(b.day)));
      facts.appendChild(fact("Giờ hẹn", b.slot_time));
      $("done-how").textContent = "Đến trước giờ hẹn, quét mã QR hoặc nhập mã tại ki-ốt để nhận số thứ tự. " +
        "(Come before your time and check in at the kiosk to get your number.)";
      // before check-in the tracking link shows the appointment (server/routes/pages.py), then its ticket
    }
    $("done-code").textContent = b.code_display;
    $("qr").src = "/dat-so/qr/" + encodeURIComponent(b.token) + ".svg";
    $("track-link").href = "/t/" + encodeURIComponent(b.token);
    show("step-done");
  }
})();
