"""Opens a report.html in headless Chromium (Playwright driving the system's browser) and prints,
as JSON, what a reader would meet: console errors, page errors, requests that left the page, the
size of every chart, and whether the copy button works. Usage: report_browser.py CHROMIUM HTML PNG"""
import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

chromium, html, png = sys.argv[1:4]
found = {"console_errors": [], "page_errors": [], "requests": [], "charts": []}
# Flags for a machine without a network or a GPU: no background connections, no first-run work.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
with sync_playwright() as p:
    # A browser start can fail when the machine is loaded by the tests around it: one more try.
    try:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
    except Exception:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("console", lambda m: m.type == "error" and found["console_errors"].append(m.text))
    page.on("pageerror", lambda e: found["page_errors"].append(str(e)))
    page.on("request", lambda r: r.url.startswith("file:") or found["requests"].append(r.url))
    page.goto(pathlib.Path(html).resolve().as_uri(), wait_until="load")
    for box in page.locator("figure.chart svg").all():
        b = box.bounding_box()
        found["charts"].append([b["width"], b["height"]] if b else [0, 0])
    button = page.locator(".snippet button").first
    if button.count():
        button.click()
        # Polled from here: the page's CSP forbids the eval behind Playwright's wait_for_function.
        for _ in range(30):
            if button.inner_text() == "Copied":
                break
            page.wait_for_timeout(100)
        found["copy_label"] = button.inner_text()
    page.screenshot(path=png, full_page=True)
    browser.close()
print(json.dumps(found))
