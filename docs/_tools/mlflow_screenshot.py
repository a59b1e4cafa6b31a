"""The picture on docs/mlflow.md: the MLflow UI's runs of a digitbench run folder, screenshot by a
headless Chromium (Debian's ``chromium``) driven by Playwright (``pip install playwright``; not a
digitbench dependency, and no browser is downloaded: it uses /usr/bin/chromium).

    mlflow server --host 127.0.0.1 --port 5088 --backend-store-uri sqlite:///store/mlflow.db \\
        --artifacts-destination store/artifacts
    digitbench run --preset quick --save-models --mlflow http://127.0.0.1:5088
    python docs/_tools/mlflow_screenshot.py "http://127.0.0.1:5088/#/experiments/1/runs" docs/img/mlflow-runs.png

It closes the assistant panel and the sidebar, shows the columns the page talks about, widens the
run names and unfolds the run folder's parent run.
"""

import re
import sys

from playwright.sync_api import sync_playwright

COLUMNS_OFF = ["Dataset", "Source", "Models"]
COLUMNS_ON = ["test_accuracy", "fit_cpu_s", "predict_cpu_s", "tuning_cpu_s", "digitbench.final_roles"]


def toggle_column(page, name: str) -> None:
    """Tick or untick ``name`` in the open Columns menu (the first entry whose text is the name,
    below the table's header row)."""
    page.get_by_placeholder("Search columns").fill(name)
    page.wait_for_timeout(700)
    items = page.get_by_text(re.compile(f"^{re.escape(name)}$"))
    boxes = [(items.nth(i).bounding_box(), i) for i in range(items.count())]
    first = min((box["y"], i) for box, i in boxes if box and box["y"] > 200 and box["x"] < 600)
    items.nth(first[1]).click()
    page.wait_for_timeout(500)


def main(url: str, out: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 740})
        page.goto(url)
        page.wait_for_timeout(6000)
        page.click("button[aria-label='Close']")  # the assistant panel
        page.click("button:has-text('Columns')")
        for name in COLUMNS_OFF + COLUMNS_ON:
            toggle_column(page, name)
        page.keyboard.press("Escape")
        page.click("button[aria-label='Toggle sidebar']")
        page.wait_for_timeout(800)
        head = page.get_by_text("Run Name", exact=True).first.bounding_box()
        created = page.get_by_text("Created", exact=True).first.bounding_box()
        middle = head["y"] + head["height"] / 2
        page.mouse.move(created["x"] - 13, middle)  # the Run Name column's right edge
        page.mouse.down()
        page.mouse.move(created["x"] + 110, middle, steps=8)
        page.mouse.up()
        parent = page.get_by_text("quick", exact=True).first.bounding_box()
        page.mouse.click(parent["x"] - 40, parent["y"] + parent["height"] / 2)  # unfold it
        page.wait_for_timeout(2500)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
