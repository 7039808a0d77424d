"""The README and docs/ point at files, tests and pages that exist."""

import re

import pytest

from tests.helpers.docs import PAGES, ROOT

# files the docs ask a reader to write
EXAMPLES = {"datamodules/kmnist.py", "modules/cnn.py"}
CODE_PATH = re.compile(
    r"\b((?:tests|lightning_app|modules|datamodules|benchmarks)/[\w/.]*\.(?:py|sh|html|yaml))(::\w+)?"
)
LINK = re.compile(r"\]\(([^)#:]+)(#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_a_page_names_exists(page):
    for path, test in CODE_PATH.findall(page.read_text()):
        if path in EXAMPLES:
            continue
        assert (ROOT / path).is_file(), f"{page.name} names {path}"
        if test:
            assert f"def {test[2:]}(" in (ROOT / path).read_text(), f"{page.name} names {path}{test}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_and_pictures_a_page_links_exist(page):
    for target, _ in LINK.findall(page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links {target}"
