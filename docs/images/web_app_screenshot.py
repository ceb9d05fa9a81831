"""Take the README's screenshot of the web app (docs/images/web-app.png): the first ankle boot
of the test set, uploaded as a 280x280 photo on white, to `make app` on the champion.

    make run && make app        # then, from the project root, in another shell:
    .venv/bin/python docs/images/web_app_screenshot.py [http://127.0.0.1:7860]

Needs the stage data of a run (data/05_model_input/) and Chromium (Debian's `chromium`)."""

import pickle
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860"
    data = pickle.loads((ROOT / "data" / "05_model_input" / "transfer_data.pkl").read_bytes())
    boot = list(data["class_names"]).index("Ankle boot")
    image = data["test_images"][list(data["test_labels"]).index(boot)]
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "ankle-boot.png"
        Image.fromarray(255 - image).resize((280, 280), Image.LANCZOS).save(photo)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(url)
            page.locator("#answered").get_by_text("version").wait_for(timeout=60_000)
            page.locator("input[type=file]").first.set_input_files(str(photo))
            page.locator("#classes").get_by_text("Ankle boot").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1_000)  # the bars' animation
            page.screenshot(path=str(ROOT / "docs" / "images" / "web-app.png"))
            browser.close()


if __name__ == "__main__":
    main()
