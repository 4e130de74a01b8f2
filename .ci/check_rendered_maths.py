"""The built book's equations render offline: open chapter 3 in a headless browser (no network
needed: MathJax is served from _build/html) and fail on raw TeX in its rendered text."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

page = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html/notebooks/03_segmentation.html").resolve()
browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
if browser is None:
    print("ci: no headless browser; the rendered maths were not checked")
    sys.exit(0)
dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                      "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout
text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S))
raw = [m for m in ("\\(", "\\[", "\\sum", "$$") if m in text]
typeset = dom.count("<mjx-container")
if raw or typeset == 0:
    sys.exit(f"ci: {page.name}: raw TeX {raw} in the rendered text, {typeset} typeset equations")
print(f"ci: {page.name}: {typeset} equations typeset by the book's own MathJax, no raw TeX")
