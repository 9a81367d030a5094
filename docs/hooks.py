"""MkDocs hook: the pages' links to files outside docs/, made to work in the built site.

The pages are written to read on a code host too, so they link to the scripts, to benchmarks/ and to
pretrained/ by relative paths, which a site built from docs/ alone does not have. At build time:

- a block from `<!-- include: PATH -->` to `<!-- end include -->` is replaced by the file PATH (relative to
  the page), its relative links rebased onto the page: the site shows README.md, CONTRIBUTING.md and
  benchmarks/RESULTS.md themselves, where a code host shows the short text between the two markers;
- an image outside docs/ is copied into the site, under `repo/` and its path in the repository;
- a link to a file that a page includes goes to that page (README.md to the home page, ...);
- a link to any other file outside docs/ points to that file on `repo_url` when mkdocs.yml sets one,
  and is plain text otherwise;
- a link or include whose target does not exist is a warning, so `mkdocs build --strict` fails on it.

Links inside docs/ are left to MkDocs, which checks them (and their anchors) itself.
"""

import logging
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.repo_links")

INCLUDE = re.compile(r"^<!-- include: (\S+) -->\n.*?^<!-- end include -->$", re.M | re.S)
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
IMAGES = (".png", ".gif", ".jpg", ".jpeg", ".svg")
COPIES = "repo"  # where the images from outside docs/ go in the site

paths = {}  # "root" (the repository) and "docs", set by on_config
included = {}  # a file that a page includes -> that page's path, set by on_files


def on_config(config):
    paths["root"] = Path(config.config_file_path).resolve().parent
    paths["docs"] = Path(config.docs_dir).resolve()


def is_relative(target: str) -> bool:
    """A link to a file by a relative path (not a URL, not an anchor of the page, not an absolute path)."""
    return not (target.startswith(("#", "/")) or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target))


def map_links(text: str, replace) -> str:
    """`text` with every link outside fenced code blocks replaced by `replace(match)`."""
    parts, start = [], 0
    for fence in FENCE.finditer(text):
        parts += [LINK.sub(replace, text[start : fence.start()]), fence.group(0)]
        start = fence.end()
    return "".join(parts) + LINK.sub(replace, text[start:])


def expand_includes(markdown: str, page: Path) -> str:
    def include(match):
        source = Path(os.path.normpath(page.parent / match.group(1)))
        if not source.is_file():
            log.warning(f"{page.name}: the included file {match.group(1)!r} does not exist")
            return match.group(0)

        def rebase(link):
            bang, text, target = link.groups()
            if not is_relative(target):
                return link.group(0)
            file, sep, anchor = target.partition("#")
            new = Path(os.path.relpath(os.path.normpath(source.parent / file), page.parent)).as_posix()
            return f"{bang}[{text}]({new}{sep}{anchor})"

        return map_links(source.read_text(encoding="utf-8"), rebase)

    return INCLUDE.sub(include, markdown)


def outside_target(page: Path, target: str):
    """The existing file outside docs/ a relative link of `page` points to; None for a link into docs/."""
    path = Path(os.path.normpath(page.parent / target.partition("#")[0]))
    if path == paths["docs"] or paths["docs"] in path.parents:
        return None
    if not path.exists() or paths["root"] not in path.parents:
        log.warning(f"{page.name}: the link {target!r} points to no file of the repository")
        return None
    return path


def on_files(files, config):
    """Add the images from outside docs/ that the pages show to the site; note which page includes what."""
    included.clear()
    for file in files.documentation_pages():
        page = Path(file.abs_src_path)
        for target in INCLUDE.findall(page.read_text(encoding="utf-8")):
            included[Path(os.path.normpath(page.parent / target))] = page
        markdown = expand_includes(page.read_text(encoding="utf-8"), page)
        for bang, _, target in LINK.findall(FENCE.sub("", markdown)):
            if not (bang and is_relative(target)):
                continue
            path = outside_target(page, target)
            in_repo = path.relative_to(paths["root"]).as_posix() if path else None
            if path and path.suffix.lower() in IMAGES and files.get_file_from_path(in_repo) is None:
                # the page links to it by its repository path; the site holds it under `repo/`
                dest_uri = f"{COPIES}/{in_repo}"
                files.append(File(in_repo, str(paths["root"]), config.site_dir, False, dest_uri=dest_uri))
    return files


def on_page_markdown(markdown, page, config, files):
    source = Path(page.file.abs_src_path)
    markdown = expand_includes(markdown, source)

    def fix(link):
        bang, text, target = link.groups()
        path = outside_target(source, target) if is_relative(target) else None
        if path is None:
            return link.group(0)
        in_repo = path.relative_to(paths["root"]).as_posix()
        if path in included:
            anchor = target.partition("#")[2]
            page_link = Path(os.path.relpath(included[path], source.parent)).as_posix()
            return f"{bang}[{text}]({page_link}{'#' * bool(anchor)}{anchor})"
        if bang and path.suffix.lower() in IMAGES:
            return f"![{text}]({Path(os.path.relpath(paths['docs'] / in_repo, source.parent)).as_posix()})"
        if config.repo_url:
            anchor = target.partition("#")[2]
            return f"{bang}[{text}]({config.repo_url.rstrip('/')}/blob/HEAD/{in_repo}{'#' * bool(anchor)}{anchor})"
        return text

    return map_links(markdown, fix)
