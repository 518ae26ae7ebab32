"""The viewer in headless Chromium: a T2I session's belief-graph picture, a fork made from
the page and its diff, and a live T2I session run to the end through the page with a
belief edit — which the store then holds, and which replays identically. With
``TINMEN_VIEW_SHOTS=DIR`` the session and live pages are also saved as PNGs there (the
screenshots in docs/img are made this way)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

SCRIPTED_MODELS = {"parser": "scripted:t2i", "questioner": "scripted:t2i",
                   "t2i": "shapes-renderer"}
OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll('svg.belief-graph g.slot > rect:first-of-type,'
                                              + ' svg.belief-graph g.entity > rect')]
    .map(r => r.getBoundingClientRect());
  let hits = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) hits++;
  }
  return [boxes.length, hits];
}"""


def _shot(page, name: str) -> None:
    folder = os.environ.get("TINMEN_VIEW_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def _graph_steps(client, sid):
    data = client.get(f"/api/sessions/{sid}").json()
    return [s["step"] for s in data["steps"]
            if any(b["subject"] == "belief_graph" for b in s["beliefs"])]


def test_a_t2i_session_page_shows_its_belief_graph_with_probabilities(page, server, client,
                                                                      viewer_store):
    sid = viewer_store[1]["t2i"]
    step = _graph_steps(client, sid)[1]
    page.goto(f"{server.url}/sessions/{sid}?step={step}")
    svg = page.locator("svg.belief-graph")
    svg.wait_for()
    probs = svg.locator("text.prob").all_text_contents()
    assert any(p.replace(".", "").isdigit() for p in probs) and "p=" in " ".join(probs)
    assert page.locator("svg.belief-graph g.slot.changed").count() >= 1
    assert page.locator("ul.changes li").count() >= 1
    boxes, overlaps = page.evaluate(OVERLAPS)
    assert boxes >= 3 and overlaps == 0
    assert page.locator(".images img").count() >= 1
    _shot(page, "viewer-session.png")


def test_fork_from_the_page_then_see_the_diff(page, server, viewer_store):
    sid = viewer_store[1]["t2i"]
    page.goto(f"{server.url}/sessions/{sid}?step=3")
    page.fill("#fork input[name=at_step]", "3")
    page.fill("#fork input[name=option]", "max_turns=1")
    page.click("#fork button[type=submit]")
    page.wait_for_url("**/diff?**")
    assert "first divergence at step" in page.inner_text("#verdict")
    assert page.locator("#first-divergence").is_visible()
    assert page.locator("tr.differs").count() >= 1


def _wait_idle(page) -> str:
    """The live page's status once no answer is being acted on (locator waits: the page's
    Content-Security-Policy forbids the eval behind wait_for_function)."""
    page.locator("body[data-live-status]:not([data-live-status='busy'])").wait_for()
    return str(page.evaluate("document.body.dataset.liveStatus"))


def _answer_until_done(page, limit: int = 12) -> None:
    for _ in range(limit):
        if _wait_idle(page) == "completed":
            return
        turn = page.evaluate("document.body.dataset.turn")
        buttons = page.locator("#option-buttons button.option")
        if buttons.count():
            buttons.first.click()
        else:
            page.fill("#answer-text", "yes")
            page.click("#answer-form button[type=submit]")
        page.locator(f"body:not([data-turn='{turn}']), body[data-live-status='completed']"
                     ).first.wait_for()
    raise AssertionError("the live session did not finish")


def _start_live(page, server, prompt: str) -> str:
    page.goto(f"{server.url}/live")
    page.fill("#live-start input[name=prompt]", prompt)
    page.fill("#live-start input[name=max_turns]", "2")
    for role in ("parser", "questioner", "t2i", "user", "scorer", "embedder"):
        page.fill(f"#live-start input.role[name={role}]", SCRIPTED_MODELS.get(role, ""))
    page.click("#live-start button[type=submit]")
    page.wait_for_url("**/live/*")
    page.locator("#question").wait_for()
    return page.url.rsplit("/", 1)[1]


def test_a_live_t2i_session_through_the_page_with_a_belief_edit(page, server, viewer_store):
    from tinmen.graphs.replay import replay_session
    from tinmen.storage import Store, orm

    sid = _start_live(page, server, "a circle")
    assert page.inner_text("#question").endswith("?")
    page.locator("svg.belief-graph").wait_for()
    page.select_option("select.value[data-slot='circle.size']", "large")
    page.click("button.set[data-slot='circle.size']")
    page.locator("body[data-turn='1'][data-live-status='interrupted']").wait_for()
    assert page.locator("svg.belief-graph g.slot.changed[data-key='circle.size']").count() == 1
    _shot(page, "viewer-live-t2i.png")
    _answer_until_done(page)
    assert page.inner_text("#final-prompt")
    assert page.locator("#image").is_visible()
    store = Store.open(viewer_store[0])
    try:
        with store.unit_of_work() as uow:
            edits = uow.session.scalars(select(orm.Belief).where(
                orm.Belief.session_id == sid, orm.Belief.source == "user_edit")).all()
            answers = [h.response for h in uow.records.human_inputs(sid)]
        assert [e.value for e in edits] == ["set circle.size=large"]
        assert answers[0] == "set circle.size=large" and len(answers) >= 2
        report = replay_session(store, sid)
        assert report.identical, report.differences or report.divergence
    finally:
        store.close()


def test_two_tabs_run_live_sessions_at_once(browser, server):
    pages = [browser.new_page() for _ in range(2)]
    try:
        for pg, prompt in zip(pages, ("a square", "a star")):
            pg.goto(f"{server.url}/live")
            pg.fill("#live-start input[name=prompt]", prompt)
            for role, spec in SCRIPTED_MODELS.items():
                pg.fill(f"#live-start input.role[name={role}]", spec)
        for pg in pages:  # both submitted before either is answered
            pg.click("#live-start button[type=submit]", no_wait_after=True)
        ids = set()
        for pg in pages:
            pg.wait_for_url("**/live/*", timeout=60_000)
            pg.locator("#question").wait_for()
            ids.add(pg.url.rsplit("/", 1)[1])
        assert len(ids) == 2
    finally:
        for pg in pages:
            pg.close()


@pytest.mark.parametrize("path", ["/sessions", "/studies"])
def test_list_pages_render(page, server, path):
    page.goto(server.url + path)
    assert page.locator("table.grid").count() >= 1
