"""Documents per web domain: counted from meta.url per step, bounded in memory, shown in the terminal and HTML."""

import io

from audit_outputs import record, write_output
from rich.console import Console

from fusionforge.mixers.audit import run_audit
from fusionforge.mixers.audit.domains import OTHER, DomainCounts
from fusionforge.mixers.audit.html import render_html
from fusionforge.mixers.audit.terminal import render, short_summary
from fusionforge.pipelines.core import schema as S

PAGES = [
    ("https://www.news.example.org/a", "kept"),
    ("https://news.example.org/b?x=1", "kept"),
    ("http://user@NEWS.example.org:8080/c", "dedupe:exact_dup_of:x"),
    ("https://blog.example.net/", "filter:too_short"),
    ("https://blog.example.net/2", "kept"),
    ("https://shop.example.com/item", "kept"),
]


def _chain(root):
    """Two steps: shard kept every page; filter dropped two of them. A text without a URL is not counted."""

    def rows(drop: bool):
        out = []
        for i, (url, fate) in enumerate(PAGES):
            meta = {"url": url, "images": [{"url": "https://cdn.example/img.png"}]}
            reason = fate if drop and fate != "kept" else None
            out.append(record(f"crawl/{i}", "crawl", "interleaved", "text", meta=meta, **{S.DROP_REASON: reason}))
        out.append(record("web/0", "web", "text", "no url"))
        return out

    shard = write_output(root / "shard", "shard", rows(False))
    write_output(root / "filter", "filter", rows(True), upstream=shard)
    return [str(root / "shard"), str(root / "filter")]


def test_documents_are_counted_per_domain_after_each_step(tmp_path):
    report = run_audit(_chain(tmp_path))
    domains = report["domains"]
    assert domains["steps"] == ["shard", "filter"] and domains["domains"] == 3 and not domains["capped"]
    assert domains["rows"] == [
        {"domain": "news.example.org", "records": {"shard": 3, "filter": 2}},
        {"domain": "blog.example.net", "records": {"shard": 2, "filter": 1}},
        {"domain": "shop.example.com", "records": {"shard": 1, "filter": 1}},
    ]
    console = Console(file=io.StringIO(), record=True, width=160)
    console.print(render(report))
    console.print(short_summary(report))
    text = console.export_text()
    assert text.count("documents per domain (3 domains)") == 2
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if "news.example" in line]
    assert cells == [["news.example.org", "3", "2"]] * 2
    page = render_html(report)
    assert "<h2>Documents per domain</h2>" in page
    assert '<td class="">blog.example.net</td><td class="n">2</td><td class="n">1</td>' in page


def test_a_crawl_without_urls_has_no_section(tmp_path):
    write_output(tmp_path / "shard", "shard", [record("web/0", "web", "text", "no url")])
    assert run_audit([str(tmp_path / "shard")])["domains"] is None


def test_counts_stay_bounded_and_the_most_frequent_domains_survive_merges(monkeypatch):
    import fusionforge.mixers.audit.domains as domains

    monkeypatch.setattr(domains, "MAX_DOMAINS", 3)
    left = DomainCounts({"big.example": 50, "a.example": 1, "b.example": 1})
    right = DomainCounts({"big.example": 20, "mid.example": 9, "c.example": 1, "d.example": 1})
    merged = left.merge(right)
    assert merged.counts == {"big.example": 70, "mid.example": 9, "a.example": 1, OTHER: 3}
    assert sum(merged.counts.values()) == 83  # nothing is lost: the rest is in OTHER
