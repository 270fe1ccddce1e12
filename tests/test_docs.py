"""The documentation holds together: every local link and image in README.md and docs/*.md
resolves (anchors included, as GitHub makes them from headings), the README stays a short
front door, and it leads to every page under docs/."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 200

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:.+?)\1")
# [text](target) and ![alt](target), with an optional "title"; the text may hold one level
# of brackets (an image inside a link).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_SOURCE = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks; indented code is rare here and holds
    no links."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * 3
            continue
        if fence is not None:
            if line.lstrip().startswith(fence):
                fence = None
            continue
        yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as rendered (no code marks, emphasis or link
    targets), lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub gives the headings of a Markdown file (a repeated heading gets
    -1, -2, …)."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def local_targets(path: Path):
    """(line number, target) of every link and image of a Markdown file that points into
    the repository rather than to another site."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        reference = REFERENCE.match(line)
        targets = [reference.group(1)] if reference else []
        prose = INLINE_CODE.sub("", line)
        targets += INLINE_LINK.findall(prose) + HTML_SOURCE.findall(prose)
        for target in targets:
            if target and not EXTERNAL.match(target):
                yield number, target


def broken_links(path: Path) -> list[str]:
    """What a reader of `path` would find missing: a file or folder that is not there, or
    an anchor no heading of the target makes."""
    problems = []
    for number, target in local_targets(path):
        where, _, anchor = target.partition("#")
        destination = (path.parent / unquote(where)).resolve() if where else path
        if not destination.exists():
            problems.append(f"{path.name}:{number}: {target} (no such file)")
        elif anchor and destination.suffix == ".md" and unquote(anchor).lower() not in anchors(destination):
            problems.append(f"{path.name}:{number}: {target} (no heading makes #{anchor})")
    return problems


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_and_image_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Known part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#known-part) and [gone](missing.md), ![image](missing.png)\n"
        "[wrong part](other.md#unknown-part) and [here](#page), [nowhere](#nowhere)\n"
        "`[not a link](missing-too.md)` and [elsewhere](https://example.com/x.md)\n\n"
        "```\n[in a code block](missing-three.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "page.md:3: missing.md (no such file)",
        "page.md:3: missing.png (no such file)",
        "page.md:4: other.md#unknown-part (no heading makes #unknown-part)",
        "page.md:4: #nowhere (no heading makes #nowhere)",
    ]


def test_anchors_are_made_the_way_github_makes_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Approvals (`bench/approvals.py`)\n\n## The engine's own pending actions\n\n"
        "## Edit before approve, and what the engine runs\n\n## Notes\n\n## Notes\n",
        encoding="utf-8",
    )
    assert anchors(page) == {
        "approvals-benchapprovalspy",
        "the-engines-own-pending-actions",
        "edit-before-approve-and-what-the-engine-runs",
        "notes",
        "notes-1",
    }


def test_the_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_the_readme_leads_to_every_docs_page():
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in local_targets(README)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_each_docs_page_opens_with_its_title_and_what_it_is_for(path):
    title, blank, purpose, *_ = path.read_text(encoding="utf-8").splitlines() + ["", "", ""]
    assert title.startswith("# ") and blank == "" and purpose and not purpose.startswith("#")
