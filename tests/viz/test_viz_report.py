"""The HTML report: parsed with a real HTML parser; rendered by chromium when installed."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from taskgraph.errors import DataError
from taskgraph.viz import write_report


class Page(HTMLParser):
    """Collects the title, headings, images, links, scripts and table rows of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.headings: list[str] = []
        self.images: list[dict] = []
        self.rows: dict[str, int] = {}
        self.tags: list[str] = []
        self.urls: list[str] = []
        self._stack: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self.open_tags = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag not in ("img", "meta", "br", "link"):
            self._stack.append(tag)
        if tag == "img":
            self.images.append(attrs)
        if tag == "table":
            self._table = attrs.get("id", "")
            self.rows[self._table] = 0
        if tag == "tr" and self._table is not None and "tbody" in self._stack:
            self.rows[self._table] += 1
        for key in ("href", "src"):
            if key in attrs:
                self.urls.append(attrs[key])

    def handle_endtag(self, tag):
        assert self._stack and self._stack[-1] == tag, f"</{tag}> closes {self._stack[-1:]}"
        self._stack.pop()
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "title":
            self.title += data
        if self._stack and self._stack[-1] == "h2":
            self.headings.append(data.strip())


def parse(path) -> Page:
    page = Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    page.close()
    assert not page._stack, f"unclosed tags: {page._stack}"
    return page


def decode_png(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    image = Image.open(io.BytesIO(data))
    image.verify()
    return Image.open(io.BytesIO(data))


@pytest.fixture(scope="module")
def report_page(run):
    return write_report(run.folder)


def test_report_of_a_run_folder_has_every_section(run, report_page):
    assert report_page == str(run.folder / "report.html")
    page = parse(report_page)
    assert page.title.startswith("animals")
    assert page.headings == ["Task graph", "Metrics", "Training", "Calibration", "Synapses"]
    assert page.rows["metrics-table"] == len(run.hierarchy)
    assert page.rows["synapse-table"] == len(run.model.synapses())
    with_ece = [t for t, m in run.report.tasks.items() if m.get("ece") is not None]
    assert page.rows["calibration-table"] == len(with_ece) == 3
    alts = [img["alt"] for img in page.images]
    assert alts == ["task graph", "per-task scores", "training curves",
                    "sampled synapse weights", "task-embedding similarity"]
    for img in page.images:
        image = decode_png(img["src"])
        assert min(image.size) > 100 and img.get("alt")
    # self-contained: no scripts, no links, every URL inline
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert all(u.startswith("data:") for u in page.urls)


def test_report_from_objects_with_data_draws_reliability_diagrams(run, tmp_path):
    out = write_report(None, tmp_path / "with_data.html", model=run.model, report=run.report,
                       history=run.history, data=run.loader, samples=2, title="a <run> & more")
    page = parse(out)
    assert page.title.startswith("a <run> & more")  # escaped in the file, text again here
    assert page.rows["metrics-table"] == len(run.hierarchy)
    assert "calibration-table" not in page.rows
    assert any(img["alt"] == "reliability diagrams" for img in page.images)


def test_report_of_a_partial_folder(run, tmp_path):
    only = tmp_path / "only_history"
    only.mkdir()
    shutil.copy(run.folder / "history.json", only / "history.json")
    page = parse(write_report(only))
    assert page.headings == ["Training", "Calibration"]
    assert [img["alt"] for img in page.images] == ["training curves"]


def test_report_errors(tmp_path):
    with pytest.raises(DataError, match="nothing to report"):
        write_report(tmp_path)
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="report.json: not a report JSON file"):
        write_report(bad)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_renders_the_report(report_page, tmp_path):
    page = report_page
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}",
           f"--screenshot={shot}", "--window-size=1200,2000", f"file://{page}"]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists()
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        colours = image.convert("L").getextrema()
        assert colours[0] < 100 < colours[1]  # not a blank page


def test_the_metrics_section_says_what_the_samples_were():
    from taskgraph.viz.report_sections import metrics_section

    data = {"overall": 0.5, "samples": 32, "n_examples": 9,
            "tasks": {"a": {"type": "binary", "n": 9, "score": 0.5}}}
    assert "32 Monte-Carlo samples (MC dropout)." in metrics_section({**data,
                                                                       "draws": "MC dropout"})
    assert "32 Monte-Carlo samples. Primary" in metrics_section(data)  # an older report
