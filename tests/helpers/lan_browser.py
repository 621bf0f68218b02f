"""Headless Chromium on a box of the test LAN (a phone, the counter PC), driven by JSON lines.

Started with ``ip netns exec BOX``, so Chromium and Playwright's driver live in that box's network:
every page load crosses the switch to the server. One page; commands on stdin, one answer each:

* ``{"cmd": "goto", "url": U}``; ``{"cmd": "fill"|"select", "selector": S, "value": V}``;
  ``{"cmd": "click", "selector": S}``; ``{"cmd": "press", "selector": S, "key": K}``;
* ``{"cmd": "text", "selector": S}`` -> ``{"text": ...}`` (what the user reads there, now);
* ``{"cmd": "screenshot", "path": P}``; ``{"cmd": "quit"}``.

Usage: python -m tests.helpers.lan_browser '{"viewport": [390, 844], "mobile": true}'
"""

from __future__ import annotations

import json
import sys
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    raw = json.loads(sys.argv[1])
    from playwright.sync_api import sync_playwright

    out = sys.stdout
    sys.stdout = sys.stderr

    def answer(value: Any) -> None:
        out.write(json.dumps(value, ensure_ascii=False) + "\n")
        out.flush()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        width, height = raw.get("viewport", [1366, 768])
        mobile = bool(raw.get("mobile"))
        context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile)
        page = context.new_page()
        page.set_default_timeout(15000)
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            cmd = command["cmd"]
            try:
                if cmd == "quit":
                    answer({"ok": True})
                    break
                if cmd == "goto":
                    page.goto(command["url"])
                elif cmd == "fill":
                    page.fill(command["selector"], command["value"])
                elif cmd == "select":
                    page.select_option(command["selector"], command["value"])
                elif cmd == "click":
                    page.click(command["selector"])
                elif cmd == "press":
                    page.locator(command["selector"]).press(command["key"])
                elif cmd == "wait":
                    page.wait_for_selector(command["selector"])
                elif cmd == "text":
                    answer({"text": page.locator(command["selector"]).inner_text()})
                    continue
                elif cmd == "screenshot":
                    page.screenshot(path=command["path"])
                else:
                    answer({"error": f"unknown command {cmd!r}"})
                    continue
                answer({"ok": True, "url": page.url})
            except Exception as error:  # report it to the test instead of hanging it
                answer({"error": repr(error)[:2000]})
        browser.close()


if __name__ == "__main__":
    main()
