"""The attention explorer in a real JupyterLab, driven by headless Chromium.

Starts JupyterLab from this environment on 127.0.0.1, opens the explorer
notebook (parameters injected by papermill, pointing at a tiny local model),
runs all cells, checks that the widget controls and plotly figures render,
moves the layer slider and checks that the figure follows, and saves a
screenshot to results/test-artifacts/. `make test` installs Debian's chromium
first (`make browser-deps`).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "results", "test-artifacts")
TOKEN = "workbench-test-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, toy_vocab):
    import papermill

    from workbench.checkpoints.load import save_pretrained
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(str(toy_vocab))
    encoder = BertEncoder.from_config_object(
        BertConfig.from_size("tiny", vocab_size=tokenizer.vocabulary_size(), max_position_embeddings=32)
    )
    save_pretrained(encoder, tokenizer, str(tmp_path / "tiny_model"))
    papermill.execute_notebook(
        os.path.join(ROOT, "notebooks", "attention_explorer.ipynb"),
        str(tmp_path / "explorer.ipynb"),
        parameters={
            "model": str(tmp_path / "tiny_model"),
            "sentence_a": "The cat sat on the mat.",
            "sentence_b": "Hello world!",
            "output_dir": str(tmp_path / "out"),
        },
        prepare_only=True,
    )
    port = free_port()
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    server = subprocess.Popen(
        [
            jupyter,
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            "--allow-root",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.disable_check_xsrf=True",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "jupyter.log", "w"),
        cwd=str(tmp_path),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start: " + (tmp_path / "jupyter.log").read_text()[-2000:])
        yield url, tmp_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_explorer_renders_and_follows_the_layer_control(jupyterlab):
    from playwright.sync_api import sync_playwright

    url, workdir = jupyterlab
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is not installed: run `make browser-deps`"
    os.makedirs(ARTIFACTS, exist_ok=True)
    for old in os.listdir(ARTIFACTS):
        if old.startswith("attention_explorer"):
            os.remove(os.path.join(ARTIFACTS, old))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(f"{url}/lab/tree/explorer.ipynb?token={TOKEN}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar", timeout=60_000)
        # JupyterLab asks which kernel to start (the prepared notebook names the
        # environment's `workbench` kernel): accept its proposal.
        try:
            page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
        except Exception:
            pass  # no dialog: the kernel started by itself
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        # Controls and figures of the explorer.
        try:
            page.wait_for_selector(".widget-slider", timeout=150_000)
        except Exception as error:
            page.screenshot(path=os.path.join(ARTIFACTS, "attention_explorer_failed.png"), full_page=True)
            raise AssertionError("explorer did not render; page text: " + page.inner_text("body")[-3000:]) from error
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
        assert page.locator(".widget-text input").count() >= 2  # sentence A and B
        assert page.locator(".widget-select-multiple select").count() == 1
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000)
        title = page.locator(".js-plotly-plot .gtitle").first
        page.wait_for_function(
            "document.querySelector('.js-plotly-plot .gtitle') && "
            "document.querySelector('.js-plotly-plot .gtitle').textContent.includes('Layer 1')",
            timeout=180_000,
        )
        page.screenshot(path=os.path.join(ARTIFACTS, "attention_explorer_layer1.png"), full_page=True)
        # Move the layer slider with the keyboard and see the head view follow.
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "document.querySelector('.js-plotly-plot .gtitle').textContent.includes('Layer 2')", timeout=180_000
        )
        assert "Layer 2" in title.text_content()
        page.screenshot(path=os.path.join(ARTIFACTS, "attention_explorer_layer2.png"), full_page=True)
        # The last cell's export ran in the browser-driven kernel.
        page.wait_for_function("document.body.innerText.includes('attention_statistics.csv')", timeout=120_000)
        browser.close()
    assert (workdir / "out" / "attention.html").exists()


def test_analysis_page_and_suite_report_render_their_figures(tmp_path):
    """A tiny real run's analysis page and the report over it, opened from disk
    (file://, nothing else reachable) in chromium: every figure draws."""
    from playwright.sync_api import sync_playwright
    from tiny_runs import SAMPLES, tiny_run

    from workbench.explore.analysis import analyze_result
    from workbench.runs.suite import write_report

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is not installed: run `make browser-deps`"
    results = tmp_path / "results"
    result = tiny_run("mnli", results / "runs", results / "finetune.csv", max_train_examples=16)
    analysis = analyze_result(result, SAMPLES)
    page = analysis.write_html()
    report = write_report(str(results))
    with open(report, encoding="utf-8") as f:
        report_figures = f.read().count("Plotly.newPlot(")
    assert report_figures >= 3  # beside the paper, seed spread, training curves (+ gap when the paper has it)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        view = browser.new_page(viewport={"width": 1300, "height": 1600})
        errors = []
        view.on("pageerror", lambda error: errors.append(str(error)))
        for path, figures, name in ((page, len(analysis.figures), "analysis"), (report, report_figures, "report")):
            view.goto("file://" + path)
            try:
                view.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}", timeout=60_000
                )
            except Exception as error:
                view.screenshot(path=os.path.join(ARTIFACTS, f"{name}_failed.png"), full_page=True)
                raise AssertionError(f"{name}: figures did not render; errors: {errors}") from error
            assert view.locator(".js-plotly-plot").count() == figures
            assert (
                view.locator(
                    ".js-plotly-plot .bars, .js-plotly-plot .heatmaplayer, .js-plotly-plot .scatterlayer"
                ).count()
                > 0
            )
            view.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)
        # The report links the run's analysis page, relative to where the report is.
        link = view.locator("a", has_text="analysis").first.get_attribute("href")
        assert os.path.normpath(os.path.join(os.path.dirname(report), link)) == page
        assert not errors, errors
        browser.close()
