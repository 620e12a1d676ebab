"""The officer console in a real browser (issue 15): Debian's Chromium, headless, driven by
Playwright, against two real nodes of a demo network (NL and KE, which reach each other
directly).

One certificate's whole life across the two consoles, then what the console promises
besides: a forged form refused, a guessed password locked out, Arabic laid out right to
left, everything done without JavaScript, and the certificate form by keyboard alone.
Each step's screenshot is kept (conftest.py says where).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect

from tests.browser.conftest import CHROMIUM, Browsing, ConsoleNode
from tests.integration.console.forms import FORM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)",
    ),
]

# What crosses the network (a certificate to KE, KE's answer back) has this long to show.
ARRIVAL_TIMEOUT = 30.0
_EDIT_URL = re.compile(r"/console/export/(\d+)/edit$")
_VIEW_URL = re.compile(r"/console/export/\d+$")


def sign_in(page: Page, node: ConsoleNode, user: str, password: str | None = None) -> None:
    """Sign `user` in on `node`'s login page (the right password unless one is given)."""
    page.goto(node.console + "login")
    page.fill("#user", user)
    page.fill("#password", node.passwords[user] if password is None else password)
    page.locator("main form button[type=submit]").click()


def signed_in(page: Page, node: ConsoleNode, user: str) -> None:
    sign_in(page, node, user)
    expect(page.locator("header .who")).to_contain_text(user)


def fill_form(page: Page, values: Mapping[str, str]) -> None:
    """Type each value into its field (choose it, for a select), as an officer would."""
    for key, value in values.items():
        field = page.locator(f"#f-{key}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def new_draft(page: Page) -> str:
    """A new certificate from the home page's button; its form's URL."""
    page.locator("main").get_by_role("button", name="New certificate").click()
    expect(page).to_have_url(_EDIT_URL)
    return page.url


def poll(page: Page, url: str, found: Callable[[], Locator], what: str) -> None:
    """Reload `url` until `found()` is on it, for up to ARRIVAL_TIMEOUT seconds."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while True:
        page.goto(url)
        if found().count() > 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not on {url} after {ARRIVAL_TIMEOUT:.0f} s")
        page.wait_for_timeout(1000)


def _inside(inner: FloatRect, outer: FloatRect) -> bool:
    return (
        outer["x"] <= inner["x"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
        and outer["y"] <= inner["y"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
    )


def home_counts(page: Page, node: ConsoleNode) -> int:
    """How many export certificates the home page counts, all states together."""
    page.goto(node.console)
    counts = page.locator("main .cards section").first.locator(".counts .n").all_inner_texts()
    return sum(int(n) for n in counts)


def test_a_certificate_from_nl_to_ke_and_ke_s_rejection_back(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    nl, ke = network["NL"], network["KE"]

    # NL's clerk drafts it, leaving a unit code wrong.
    clerk = browsing.page()
    clerk.goto(nl.console)
    expect(clerk).to_have_url(re.compile(r"/console/login"))  # every page behind sign-in
    browsing.shot(clerk, "login")
    signed_in(clerk, nl, "clerk")
    edit_url = new_draft(clerk)
    number = clerk.locator("#f-number").input_value()
    assert number.startswith("NL-"), number
    fill_form(clerk, {k: v for k, v in FORM.items() if k != "item-0-quantity_unit"})
    # A mark on the page that a reload would lose: the finding must come without one.
    clerk.evaluate("window.stillTheSamePage = true")
    unit = clerk.locator("#f-item-0-quantity_unit")
    unit.press_sequentially("BOGUS")
    unit_findings = clerk.locator("#find-item-0-quantity_unit .finding")
    expect(unit_findings).to_contain_text("unknown unit code 'BOGUS'")
    assert clerk.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    # Beside the field: in the field's own box, just below its input.
    beside = clerk.locator(".field", has=unit).locator(".finding")
    expect(beside).to_contain_text("BOGUS")
    field_box, finding_box = unit.bounding_box(), beside.bounding_box()
    assert field_box is not None and finding_box is not None
    assert 0 <= finding_box["y"] - (field_box["y"] + field_box["height"]) < 60
    assert abs(finding_box["x"] - field_box["x"]) < 20
    # Nothing else is wrong: no other field has a finding of its own.
    expect(clerk.locator(".field .finding")).to_have_count(1)
    unit.scroll_into_view_if_needed()
    browsing.shot(clerk, "finding-beside-the-field-as-typed")

    # The Check button asks the server with the whole page: the same finding, the field
    # marked invalid for assistive technology too.
    clerk.locator(".actions").get_by_role("button", name="Check").click()
    clerk.wait_for_load_state()
    assert clerk.evaluate("window.stillTheSamePage === undefined"), "Check did not reload"
    expect(unit_findings).to_contain_text("unknown unit code 'BOGUS'")
    expect(unit).to_have_attribute("aria-invalid", "true")
    expect(unit).to_have_value("BOGUS")  # what was typed is kept
    unit.scroll_into_view_if_needed()
    browsing.shot(clerk, "finding-beside-the-field-after-check")

    # Fixed, the finding goes as the clerk types; then submitted.
    unit.fill("KGM")
    expect(unit_findings).to_have_count(0)
    clerk.locator(".actions").get_by_role("button", name="Submit for approval").click()
    expect(clerk).to_have_url(_VIEW_URL)
    view_url = clerk.url
    expect(clerk.locator("#cert-state")).to_have_text("Submitted")
    expect(clerk.locator("main .notice")).to_contain_text("Submitted for approval.")
    # Whoever drafted it cannot approve or issue it: the buttons are not there.
    expect(clerk.locator("#move-approve, #move-issue")).to_have_count(0)
    browsing.shot(clerk, "submitted-clerk-has-no-issue-button")
    assert view_url == edit_url.removesuffix("/edit")

    # NL's certifying officer, in a browser session of their own, approves and issues it.
    officer = browsing.page()
    signed_in(officer, nl, "officer")
    officer.goto(view_url)
    expect(officer.locator("#move-approve")).to_be_visible()
    expect(officer.locator("#move-issue")).to_have_count(0)  # approved first, then issued
    browsing.shot(officer, "certificate-page-with-actions")
    officer.locator("#move-approve").click()
    expect(officer.locator("#cert-state")).to_have_text("Approved")
    officer.locator("#move-issue").click()
    expect(officer.locator("#cert-state")).to_have_text("Issued and sent")
    expect(officer.locator("main .notice").first).to_contain_text("on its way to KE")
    expect(officer.locator("#delivery-state")).to_be_visible()
    browsing.shot(officer, "issued")

    # It arrives in KE's console, where the import inspector opens it.
    inspector = browsing.page()
    signed_in(inspector, ke, "inspector")

    def row_link() -> Locator:
        return inspector.locator("table.list").get_by_role("link", name=number)

    poll(inspector, ke.console + "inbox", row_link, f"{number} in KE's inbox")
    expect(row_link().locator("xpath=ancestor::tr")).to_contain_text("NL")
    browsing.shot(inspector, "ke-inbox")
    row_link().click()
    expect(inspector.locator("main h1")).to_contain_text(number)
    authenticity = inspector.locator("#authenticity")
    expect(authenticity).to_contain_text("Signature verified")
    expect(authenticity).to_contain_text("signed by the NPPO of NL")
    expect(authenticity.locator("dt:has-text('From') + dd")).to_have_text("NL")
    expect(inspector.locator("#route")).to_have_text("direct")
    browsing.shot(inspector, "received-with-authenticity")

    # The PDF opens in a tab of its own, as a PDF; its bytes are a PDF's.
    pdf_link = inspector.locator("#pdf-link")
    with (
        inspector.context.expect_page() as opened,
        inspector.context.expect_event("response", lambda r: r.url.endswith("/pdf")) as got,
    ):
        pdf_link.click()
    assert got.value.status == 200
    assert got.value.headers["content-type"] == "application/pdf"
    tab = opened.value
    assert tab.url == inspector.url + "/pdf"
    tab.close()
    # Chromium hands the PDF to its viewer, which keeps the bytes from Playwright: the
    # link is fetched again with the same session's cookies.
    href = pdf_link.get_attribute("href")
    assert href is not None
    fetched = inspector.context.request.get(ke.console.removesuffix("/console/") + href)
    assert fetched.ok and fetched.body().startswith(b"%PDF"), fetched.body()[:40]

    # The inspector rejects it, saying why.
    reason = "Live thrips found in two cartons at inspection"
    choice = inspector.locator("input[name=decision][value=rejected]")
    # Each choice is drawn inside the Decision box: its button, then its words.
    decision_box = inspector.locator("fieldset:has(input[name=decision])").bounding_box()
    choice_box = inspector.locator("label.check", has=choice).bounding_box()
    button_box = choice.bounding_box()
    assert decision_box is not None and choice_box is not None and button_box is not None
    assert _inside(choice_box, decision_box), (choice_box, decision_box)
    assert button_box["width"] < 40, button_box
    choice.check()
    inspector.fill("#answer-text", reason)
    browsing.shot(inspector, "rejecting")
    inspector.locator("#send-answer").click()
    expect(inspector.locator("#our-answer .decision")).to_contain_text("rejected")
    expect(inspector.locator("#our-answer .decision")).to_contain_text(reason)
    expect(inspector.locator("#send-answer")).to_have_count(0)  # one answer only
    browsing.shot(inspector, "rejected")

    # NL's officer sees the rejection and its reason on the certificate's page.
    answer = officer.locator("#importer-answer .decision")
    poll(officer, view_url, lambda: answer, f"KE's answer on {number}")
    expect(answer).to_contain_text("rejected")
    expect(answer).to_contain_text(reason)
    answer.scroll_into_view_if_needed()
    browsing.shot(officer, "rejection-seen-by-nl")


def test_a_form_with_a_forged_csrf_token_is_refused(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    nl = network["NL"]
    browsing.refused_pages_allowed = True
    page = browsing.page()
    signed_in(page, nl, "clerk")
    before = home_counts(page, nl)
    form = page.locator("main form[action$='/export/new']")
    token = form.locator("input[name=csrf]")
    assert len(token.input_value()) >= 32
    token.evaluate("input => { input.value = 'forged-' + input.value.slice(7); }")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        form.get_by_role("button", name="New certificate").click()
    assert posted.value.status == 403
    expect(page.locator("main .error")).to_contain_text("This form has expired")
    browsing.shot(page, "csrf-refused")
    assert home_counts(page, nl) == before  # nothing was created
    # The session itself is intact: the real token still works.
    new_draft(page)
    assert home_counts(page, nl) == before + 1


def test_five_wrong_passwords_lock_the_name_even_against_the_right_one(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    # KE's auditor: no other test signs in as them, and the lock lasts 15 minutes.
    ke = network["KE"]
    browsing.refused_pages_allowed = True
    page = browsing.page()
    error = page.locator("#login-error")
    for n in range(4):
        sign_in(page, ke, "auditor", f"not the password {n}")
        expect(error).to_have_text("Wrong user name, password or code.")
    sign_in(page, ke, "auditor", "not the password 4")
    sign_in(page, ke, "auditor")  # the right password, too late
    expect(error).to_contain_text("this name is locked until")
    expect(error).to_contain_text("UTC")
    expect(page.locator("header .who")).to_have_count(0)
    browsing.shot(page, "locked-out")
    page.goto(ke.console)
    expect(page).to_have_url(re.compile(r"/console/login"))  # not signed in


def test_the_arabic_interface_is_laid_out_right_to_left(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    nl = network["NL"]
    page = browsing.page()
    signed_in(page, nl, "auditor")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "ltr")
    brand, nav = page.locator("header .brand"), page.locator("header nav")
    ltr_brand, ltr_nav = brand.bounding_box(), nav.bounding_box()
    assert ltr_brand is not None and ltr_nav is not None
    assert ltr_brand["x"] + ltr_brand["width"] <= ltr_nav["x"]  # brand left of the menu

    page.select_option("#lang-choice", label="العربية")
    page.locator("header form.lang button").click()
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    rtl_brand, rtl_nav = brand.bounding_box(), nav.bounding_box()
    assert rtl_brand is not None and rtl_nav is not None
    # The header reads from the right: the brand first, then the menu to its left.
    assert rtl_nav["x"] + rtl_nav["width"] <= rtl_brand["x"], (rtl_nav, rtl_brand)
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert rtl_brand["x"] + rtl_brand["width"] > width * 0.8
    # The page's heading starts at the right edge too.
    heading = page.locator("main h1").bounding_box()
    assert heading is not None and heading["x"] + heading["width"] > width * 0.8
    browsing.shot(page, "arabic-home")
    # The choice stays with the session: on other pages and after signing out.
    page.goto(nl.console + "export")
    expect(html).to_have_attribute("dir", "rtl")
    page.locator("header form.logout button").click()
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(html).to_have_attribute("lang", "ar")
    browsing.shot(page, "arabic-login")


def test_drafting_and_submitting_work_without_javascript(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    nl = network["NL"]
    page = browsing.page(javascript=False)
    checks: list[str] = []
    page.on("request", lambda r: checks.append(r.url) if r.url.endswith("/check") else None)
    signed_in(page, nl, "clerk")
    new_draft(page)
    fill_form(page, FORM)
    # A second commodity: the Add button posts the form and the server draws one more row.
    page.get_by_role("button", name="Add: commodity").click()
    second = {
        "item-1-description": "Lily bulbs for planting",
        "item-1-botanical_name": "Lilium longiflorum",
        "item-1-quantity": "300",
        "item-1-quantity_unit": "KGM",
        "item-1-package_count": "20",
        "item-1-package_type": "CT",
        "item-1-origin_country": "NL",
    }
    expect(page.locator("#f-item-1-description")).to_be_visible()
    expect(page.locator("#f-item-0-botanical_name")).to_have_value("Tulipa gesneriana")
    fill_form(page, second)
    # A viewport's screenshot: after a full page's, Chromium 156 without JavaScript let
    # the next click go nowhere.
    page.locator("#f-item-1-description").scroll_into_view_if_needed()
    browsing.shot(page, "no-js-second-row")
    page.locator(".actions").get_by_role("button", name="Save draft").click()
    expect(page.locator("main .notice")).to_have_text("Draft saved.")
    expect(page.locator("#f-item-1-botanical_name")).to_have_value("Lilium longiflorum")
    expect(page.locator("#f-item-0-quantity_unit")).to_have_value("KGM")
    page.locator(".actions").get_by_role("button", name="Submit for approval").click()
    expect(page).to_have_url(_VIEW_URL)
    expect(page.locator("#cert-state")).to_have_text("Submitted")
    expect(page.locator("main")).to_contain_text("Lilium longiflorum")
    browsing.shot(page, "no-js-submitted")
    assert checks == []  # htmx never ran: the server did everything


def _focused(page: Page) -> str:
    """What has the keyboard's focus: an id, else a link's address, else its tag."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.id || e.getAttribute('href') || e.tagName; }"
        )
    )


def test_the_certificate_form_by_keyboard_alone(
    network: dict[str, ConsoleNode], browsing: Browsing
) -> None:
    nl = network["NL"]
    page = browsing.page()
    signed_in(page, nl, "clerk")
    edit_url = new_draft(page)
    page.goto(edit_url)  # focus at the start of the page, as a keyboard user lands

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip')"), _focused(page)
    expect(page.locator("a.skip")).to_be_in_viewport()  # shown once focused
    browsing.shot(page, "keyboard-skip-link")
    page.keyboard.press("Enter")  # skip the header: the next Tab is in the page's content

    # The order Tab must follow: the page's focusable elements as the document has them.
    expected = page.evaluate(
        """() => Array.from(document.querySelectorAll(
               '#main a[href], #main input, #main select, #main textarea, #main button'))
             .filter(e => e.tabIndex >= 0 && e.type !== 'hidden' && !e.disabled)
             .map(e => e.id || e.getAttribute('href') || e.tagName)"""
    )
    typed = {
        "f-type_code": "851",
        "f-import_country": "KE",
        "f-place_of_issue": "NLRTM",
        "f-officer_name": "Johanna de Vries",
    }
    visited: list[str] = []
    while "f-officer_name" not in visited and len(visited) < 20:
        page.keyboard.press("Tab")
        visited.append(_focused(page))
        if visited[-1] in typed:
            page.keyboard.type(typed[visited[-1]])
    assert visited == expected[: len(visited)], (visited, expected[: len(visited)])
    assert visited[-1] == "f-officer_name"
    assert [v for v in visited if v.startswith("f-")] == [
        "f-type_code", "f-number", "f-import_country", "f-place_of_issue", "f-officer_name",
    ]  # fmt: skip
    browsing.shot(page, "keyboard-typed")

    page.keyboard.press("Enter")  # Enter in a field saves the draft
    expect(page.locator("main .notice")).to_have_text("Draft saved.")
    expect(page.locator("#f-type_code")).to_have_value("851")
    expect(page.locator("#f-import_country")).to_have_value("KE")
    # The port is kept with its name: the server completes a UN/LOCODE it knows.
    expect(page.locator("#f-place_of_issue")).to_have_value(re.compile(r"^NLRTM\b"))
    expect(page.locator("#f-officer_name")).to_have_value("Johanna de Vries")
    browsing.shot(page, "keyboard-saved")
