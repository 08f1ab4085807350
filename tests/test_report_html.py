"""`report --format html` is a page: well-formed HTML5, self-contained, every name escaped, and
showing the report's figures; a headless Chromium renders it when one is installed."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main
from archcalc.render.report_format import STAGE_COLUMNS
from archcalc.render.svg import Bar, bar_chart

SPECS = Path(__file__).parent.parent / "specs"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(html.parser.HTMLParser):
    """The page's elements as a tree check: every tag closed in order, and what each holds."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.decls: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []  # tag, attributes, parents
        self.data: list[tuple[tuple[str, ...], str]] = []  # each text, with the elements it is in
        self.tables: list[list[list[str]]] = []  # each table's rows of cell texts
        self.headed: list[bool] = []  # each table: has a header cell
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"never closed: {self.stack}")

    def handle_decl(self, decl: str) -> None:
        self.decls.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs), tuple(self.stack)))
        if tag == "table":
            self.tables.append([])
            self.headed.append(False)
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
            self.headed[-1] |= tag == "th"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs), tuple(self.stack)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.data.append((tuple(self.stack), data))
        if {"td", "th"} & set(self.stack):
            self.tables[-1][-1][-1] += data

    def tags(self, name: str) -> list[tuple[dict[str, str | None], tuple[str, ...]]]:
        return [(attrs, parents) for tag, attrs, parents in self.starts if tag == name]

    def texts(self, suffix: str) -> list[str]:
        """Texts of the elements whose path ends in `suffix`."""
        return [t for stack, t in self.data if "/".join(stack).endswith(suffix)]


def report_html(*args: str) -> str:
    result = CliRunner().invoke(main, ["report", *args, "--format", "html", "--quiet"])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def resnet50() -> str:
    return report_html(str(SPECS / "resnet50.yaml"), "--batch", "32")


def test_page_is_well_formed_html5(resnet50: str) -> None:
    page = Page(resnet50)
    assert page.errors == []
    assert page.decls == ["doctype html"] and resnet50.startswith("<!doctype html>")
    assert page.tags("html") == [({"lang": "en"}, ())]
    assert ({"charset": "utf-8"}, ("html", "head")) in page.tags("meta")
    assert [parents for _, parents in page.tags("title") if "svg" not in parents] == [("html", "head")]
    assert page.texts("head/title") == ["Design review: resnet50"]
    assert len(page.tags("h1")) == 1 and len(page.tags("h2")) == 4
    assert page.headed == [True, True]  # the glance table, headed by row; the stage table
    for attrs, _ in page.tags("th"):
        assert attrs.get("scope") in ("row", "col")
    assert sum("thead" in parents for _, parents in page.tags("th")) == len(STAGE_COLUMNS)


def test_page_is_self_contained(resnet50: str) -> None:
    page = Page(resnet50)
    assert not re.search(r"https?:|//[a-z]|url\(|@import", resnet50, re.IGNORECASE)
    assert not {tag for tag, _, _ in page.starts} & {"script", "link", "img", "iframe", "object", "embed", "a"}
    assert not [name for _, attrs, _ in page.starts for name in attrs if name in ("src", "href") or name.startswith("on")]


def test_figures_shown_are_the_reports(resnet50: str) -> None:
    page = Page(resnet50)
    glance = dict(page.tables[0])
    assert glance["Parameters"].startswith("25,557,032 ")  # torchvision docs: ResNet-50 has 25,557,032 params
    tooltips = page.texts("svg/g/title")
    # conv1, bn1 and relu: 3 outputs of 64x112x112 float32 at batch 32 = 3 * 64*112*112 * 4 * 32 bytes
    assert tooltips[0] == "conv1 to relu, 3 layers at 112×112: 308,281,344 bytes of outputs at the batch"
    # conv1's FLOPs, 2 per MAC: 2 * (64*112*112 outputs) * (3*7*7 MACs each); batch norm and ReLU count 0
    # under torch.utils.flop_counter's convention
    flops = [t for t in tooltips if "FLOPs per example" in t]
    assert flops[0] == "conv1 to relu, 3 layers at 112×112: 236,027,904 FLOPs per example"
    total = sum(int(re.search(r": ([\d,]+) FLOPs", t)[1].replace(",", "")) for t in flops)
    assert round(total / 2 / 1e9, 2) == 4.09  # torchvision docs: ResNet-50 has 4.09 GFLOPS (counted as MACs)
    assert f"({total:,} FLOPs in all)" in "".join(page.texts("figure/figcaption"))
    data = json.loads(CliRunner().invoke(main, ["report", str(SPECS / "resnet50.yaml"), "--batch", "32", "--format", "json"]).stdout)
    bytes_shown = [int(re.search(r": ([\d,]+) bytes", t)[1].replace(",", "")) for t in tooltips if "bytes" in t]
    assert bytes_shown == [s["activation_bytes"] for s in data["stages"]]
    head, *rows = page.tables[1]
    assert head == list(STAGE_COLUMNS)
    assert [(row[0], row[1]) for row in rows] == [(s["last"], str(s["layers"])) for s in data["stages"]]  # Last layer, Layers
    assert rows[0][2:4] == ["112×112", "64"]


def test_bars_are_to_scale(resnet50: str) -> None:
    page = Page(resnet50)
    bars = [attrs for attrs, parents in page.tags("rect") if "svg" in parents]
    tooltips = page.texts("svg/g/title")
    memory = [int(re.search(r": ([\d,]+) bytes", t)[1].replace(",", "")) for t in tooltips if "bytes" in t]
    widths = [float(attrs["width"] or 0) for attrs in bars[: len(memory)]]
    longest = widths[memory.index(max(memory))]
    for value, width in zip(memory, widths, strict=True):  # rounded to a pixel; a nonzero value shows
        assert abs(width - longest * value / max(memory)) <= 1 and (width > 0) == (value > 0)


def test_block_tree_nests_as_the_blocks_do(resnet50: str) -> None:
    page = Page(resnet50)
    data = json.loads(CliRunner().invoke(main, ["report", str(SPECS / "resnet50.yaml"), "--batch", "32", "--format", "json"]).stdout)

    def walk(nodes: list[dict], depth: int) -> list[tuple[int, str]]:
        return [item for n in nodes for item in [(depth, n["name"]), *walk(n["children"], depth + 1)]]

    shown = [(stack.count("ul"), text) for stack, text in page.data if stack[-1:] == ("code",) and "ul" in stack]
    assert shown == walk(data["tree"], 1)
    assert page.texts("details/summary/code") == ["layer1", "layer2", "layer3", "layer4"]


def test_findings_carry_severity_and_source(resnet50: str) -> None:
    page = Page(resnet50)
    data = json.loads(CliRunner().invoke(main, ["report", str(SPECS / "resnet50.yaml"), "--batch", "32", "--format", "json"]).stdout)
    badges = [attrs["class"] for attrs, _ in page.tags("span") if (attrs.get("class") or "").startswith("badge")]
    assert data["findings"] and badges == [f"badge {f['severity']}" for f in data["findings"]]
    assert page.texts("ol/li/h3/span")[::2] == [f["severity"] for f in data["findings"]]
    assert page.texts("ol/li/h3/code") == [f["rule"] for f in data["findings"]]
    assert [t for t in page.texts("ol/li/p") if t.startswith("Source: ")] == [f"Source: {f['source']}" for f in data["findings"]]


def test_silenced_rules_are_listed_and_no_finding_says_so() -> None:
    rules = ["dense-heavy", "memory-hotspot", "receptive-field-coverage"]  # all VGG-16 triggers at 224
    page = Page(report_html(str(SPECS / "vgg16.yaml"), *(arg for rule in rules for arg in ("--ignore", rule))))
    assert not page.tags("ol") and "None: every rule passed." in page.texts("section/p")
    assert page.texts("section/p/code") == rules


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</title><style>*{}</style>&amp;"]


def test_hostile_names_appear_only_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "hostile.json"
    spec.write_text(json.dumps({
        "name": HOSTILE[2], "input": [3, 8, 8],
        "layers": [
            {"op": "conv2d", "out": 4, "kernel": 3, "stride": 2, "name": HOSTILE[0]},  # first of a stage: a chart label
            {"op": "relu", "name": "mid"},
            {"op": "conv2d", "out": 4, "kernel": 1, "name": HOSTILE[1]},  # last of its stage: the table's row
        ],
    }))
    text = report_html(str(spec))
    page = Page(text)
    assert page.errors == []
    assert [tag for tag, _, _ in page.starts].count("style") == 1
    assert not {tag for tag, _, _ in page.starts} & {"script", "img"}
    assert not [name for _, attrs, _ in page.starts for name in attrs if name.startswith("on") or name == "src"]
    for name in HOSTILE:
        assert name not in text
    assert page.texts("head/title") == [f"Design review: {HOSTILE[2]}"]  # read back as the text it was
    assert f"{HOSTILE[0]} · 3×3" in page.texts("svg/g/text") and HOSTILE[1] in page.texts("tbody/tr/th/code")
    labels = [attrs["aria-label"] for attrs, _ in page.tags("svg")]
    assert labels and all(HOSTILE[0] in (label or "") for label in labels)


def test_a_chart_of_zeros_draws_no_bar_and_escapes_its_text() -> None:
    svg = bar_chart("<b>", [Bar("<i>", 0, "0 & 0", '"q"'), Bar("x", 0, "0", "0")], "a'b")
    page = Page(svg)
    assert page.errors == [] and not {tag for tag, _, _ in page.starts} - {"svg", "title", "g", "text", "rect"}
    assert [attrs["width"] for attrs, _ in page.tags("rect")] == ["0", "0"]
    assert page.texts("svg/title") == ["<b>"] and page.texts("svg/g/title") == ['"q"', "0"]
    assert page.tags("svg")[0][0]["aria-label"] == "<b>: <i> 0 & 0; x 0" and page.tags("svg")[0][0]["class"] == "chart a'b"


def test_chart_texts_fit_inside_the_chart() -> None:
    """Each text is held to its width in monospace columns (2 for a fullwidth character, 4 for an
    escaped ESC shown as `\\x1b`); the chart is wide enough that none crosses its edge."""
    svg = bar_chart("t", [Bar("ＨＨ\x1b", 5, "5 B", "5"), Bar("a.b", 10, "10 B", "10")], "c")
    page = Page(svg)
    width = float(page.tags("svg")[0][0]["width"] or 0)
    texts = [attrs for attrs, _ in page.tags("text")]
    assert [round(float(a["textlength"] or 0) / (13 * 0.6)) for a in texts] == [8, 3, 3, 4]  # columns: 2+2+4, 3, 3, 4
    for a in texts:
        x, length = float(a["x"] or 0), float(a["textlength"] or 0)
        assert (0 <= x - length) if a["text-anchor"] == "end" else (x + length <= width)


def test_symbolic_report_says_why_it_has_no_charts(tmp_path: Path) -> None:
    spec = tmp_path / "small.json"
    spec.write_text(json.dumps({"name": "small", "input": [3, 8, 8], "layers": [{"op": "conv2d", "out": 4, "kernel": 3}]}))
    text = report_html(str(spec), "--input", "3,H,H")
    page = Page(text)
    assert page.errors == [] and not page.tags("svg")
    assert "No charts: the stages' figures are formulas, not numbers." in page.texts("section/p")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH (apt-get install chromium)")
def test_chromium_renders_the_page(resnet50: str, tmp_path: Path) -> None:
    page = tmp_path / "review.html"
    page.write_text(resnet50, encoding="utf-8")
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    # the browser's HTML5 parser built the tree we wrote: no element moved, added or dropped
    # (it would, fixing up a stray </p> or a <div> inside a <table>)
    assert [(tag, parents) for tag, _, parents in Page(dom).starts] == [(tag, parents) for tag, _, parents in Page(resnet50).starts]
    assert dom.count("<table") == 2 and dom.count("<svg") == 2 and "25,557,032" in dom
    shot = tmp_path / "review.png"
    screenshot = [*browser, "--window-size=1200,2600", f"--screenshot={shot}", page.as_uri()]
    subprocess.run(screenshot, capture_output=True, timeout=120, check=True)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000
