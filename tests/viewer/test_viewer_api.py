"""The viewer's pages and JSON API over real sessions of every agent: what each shows, the
errors (4xx JSON, never 500), and the guards (CSRF, Origin, token, read-only GETs)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError


@pytest.mark.parametrize("agent", ["t2i", "shopper", "w2s", "judge"])
def test_every_agents_session_page_and_json(client, viewer_store, agent):
    sid = viewer_store[1][agent]
    page = client.get(f"/sessions/{sid}")
    assert page.status_code == 200 and sid[:12] in page.text
    data = client.get(f"/api/sessions/{sid}").json()
    assert data["graph"] == agent and data["steps"]
    if agent in ("shopper", "judge", "t2i"):
        decisions = [d for s in data["steps"] for d in s["decisions"]]
        assert decisions and all(abs(sum(r["p"] for r in d["rows"]) - 1) < 1e-6
                                 for d in decisions if d["rows"])
        assert any(r["chosen"] for d in decisions for r in d["rows"])


def test_t2i_session_has_a_belief_picture_with_probabilities_and_images(client, viewer_store):
    sid = viewer_store[1]["t2i"]
    data = client.get(f"/api/sessions/{sid}").json()
    graph_steps = [s["step"] for s in data["steps"]
                   if any(b["subject"] == "belief_graph" for b in s["beliefs"])]
    svg = client.get(f"/api/sessions/{sid}/belief.svg", params={"step": graph_steps[1]})
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg")
    assert 'class="prob"' in svg.text and 'class="slot changed"' in svg.text
    (image, *_) = data["images"]
    png = client.get(f"/api/artifacts/{image['sha256']}")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    calls = [c for s in data["steps"] for c in s["calls"]]
    assert any(c["tokens"] for c in calls) and all("prompt" in c for c in calls)


def test_sessions_filters_paging_and_one_grouped_step_count(client, viewer_store):
    everything = client.get("/api/sessions", params={"limit": 2}).json()
    assert everything["total"] >= 6 and len(everything["rows"]) == 2 and everything["next"]
    rest = client.get("/api/sessions", params={"limit": 500,
                                               "after": everything["next"]}).json()
    seen = [r["id"] for r in everything["rows"] + rest["rows"]]
    assert len(seen) == len(set(seen)) == everything["total"]
    t2i = client.get("/api/sessions", params={"graph": "t2i", "study": viewer_store[1]["study"]})
    assert t2i.json()["total"] == 2 and all(r["steps"] > 0 for r in t2i.json()["rows"])
    assert client.get("/sessions", params={"graph": "shopper"}).status_code == 200


def test_study_page_progress_and_report_plots(client, viewer_store):
    study = viewer_store[1]["study"]
    detail = client.get(f"/api/studies/{study}").json()
    assert (detail["done"], detail["total"]) == (2, 2)
    report = client.get(f"/api/studies/{study}/report").json()
    assert report["plots"] and report["table"].startswith("|")
    png = client.get(f"/api/studies/{study}/plots/{report['plots'][0]}")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get(f"/api/studies/{study}/plots/..%2Fx.png").status_code in (404, 422)
    assert client.get("/studies").status_code == 200


@pytest.mark.parametrize("path,status", [
    ("/api/sessions/not-hex", 422), ("/api/sessions/abcdef0123", 404),
    ("/api/artifacts/" + "0" * 64, 404), ("/api/artifacts/../../etc/passwd", 404),
    ("/api/sessions?limit=100000", 422), ("/api/studies/0", 422), ("/api/studies/999", 404),
    ("/api/diff?a=zz&b=abcd", 422), ("/sessions/abcdef0123", 404),
    ("/api/sessions?graph=%00", 422)])
def test_malformed_requests_are_4xx_json(client, path, status):
    response = client.get(path)
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_posts_need_the_csrf_token_and_this_origin(client, viewer_store, csrf):
    sid = viewer_store[1]["shopper"]
    assert client.post(f"/api/sessions/{sid}/replay").status_code == 403
    evil = client.post(f"/api/sessions/{sid}/replay",
                       headers={**csrf, "Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["error"]
    ok = client.post(f"/api/sessions/{sid}/replay",
                     headers={**csrf, "Origin": "http://127.0.0.1"})
    assert ok.status_code == 200 and ok.json()["identical"], ok.json()


def test_a_foreign_host_header_is_refused(client):
    assert client.get("/sessions", headers={"Host": "rebind.example"}).status_code == 400


def test_fork_from_the_api_and_the_diff(client, viewer_store, csrf):
    sid = viewer_store[1]["t2i"]
    fork = client.post(f"/api/sessions/{sid}/fork", headers=csrf,
                       json={"at_step": 3, "options": {"max_turns": 1}})
    assert fork.status_code == 200, fork.text
    diff = client.get(fork.json()["diff_url"]).text
    assert "first divergence" in diff
    data = client.get("/api/diff", params={"a": sid, "b": fork.json()["fork"]}).json()
    assert not data["identical"] and data["first_divergence"] >= 3
    bad = client.post(f"/api/sessions/{sid}/fork", headers=csrf,
                      json={"at_step": 1, "models": {"parser": "transformers-lm:/etc"}})
    assert bad.status_code == 400 and "viewer accepts" in bad.json()["error"]


def test_get_requests_cannot_write(app):
    with app.state.stores.read.engine.connect() as conn, pytest.raises(OperationalError):
        conn.execute(text("DELETE FROM session"))


def test_beyond_loopback_every_request_needs_the_token(viewer_store, tmp_path):
    from fastapi.testclient import TestClient
    from tinmen.viewer import ViewerConfig, create_app

    app = create_app(ViewerConfig(db=viewer_store[0], host="0.0.0.0", cache=tmp_path))
    c = TestClient(app, base_url="http://10.1.2.3:8000", follow_redirects=False)
    assert c.get("/api/sessions").status_code == 401
    first = c.get(f"/sessions?token={app.state.guard.token}")
    assert first.status_code == 303 and "token" not in first.headers["location"]
    assert c.get("/api/sessions").status_code == 200  # the cookie now
    assert TestClient(app, base_url="http://10.1.2.3:8000").get(
        "/api/sessions", headers={"X-Tinmen-Token": app.state.guard.token}).status_code == 200
    app.state.stores.close()


@pytest.mark.postgres
def test_the_viewer_over_postgresql_reads_read_only(pg_db_url, tmp_path):
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import DBAPIError
    from tinmen.graphs.session import run_session
    from tinmen.graphs.shopper import AGENT
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import resolve_spec
    from tinmen.storage import Store
    from tinmen.viewer import ViewerConfig, create_app

    store = Store.open(pg_db_url)
    sid = run_session(store, AGENT, {"scenario": "car", "info": "both"},
                      {"agent": resolve_spec("scripted:info-sensitive")},
                      pool=ModelPool()).session_id
    store.close()
    app = create_app(ViewerConfig(db=pg_db_url, cache=tmp_path))
    try:
        c = TestClient(app, base_url="http://127.0.0.1")
        assert c.get(f"/sessions/{sid}").status_code == 200
        assert c.get("/api/sessions", params={"graph": "shopper"}).json()["total"] == 1
        with app.state.stores.read.engine.connect() as conn, pytest.raises(DBAPIError):
            conn.execute(text("DELETE FROM session"))
        replay = c.post(f"/api/sessions/{sid}/replay",
                        headers={"X-CSRF-Token": app.state.guard.csrf})
        assert replay.json()["identical"], replay.json()
    finally:
        app.state.stores.close()


def test_the_view_command_is_registered(capsys):
    from tinmen.cli import main

    assert main(["view", "--help"]) == 0
    assert "--port" in capsys.readouterr().out
    assert main(["view", "--token", "short"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_the_live_json_api_re_asks_after_a_rejected_edit(client, csrf):
    models = {"parser": "scripted:t2i", "questioner": "scripted:t2i",
              "t2i": "shapes-renderer"}
    start = client.post("/api/live", headers=csrf, json={"prompt": "a circle", "max_turns": 1,
                                                         "models": models})
    assert start.status_code == 200, start.text
    sid = start.json()["session_id"]
    state = client.get(f"/api/live/{sid}").json()
    assert state["status"] == "interrupted" and state["question"] and state["svg"]
    bad = client.post(f"/api/live/{sid}/answer", headers=csrf,
                      json={"text": "set circle.colour=red"}).json()
    assert "no slot circle.colour" in bad["error"] and bad["question"] == state["question"]
    done = client.post(f"/api/live/{sid}/answer", headers=csrf, json={"text": "red"}).json()
    assert done["status"] == "completed" and "red" in done["final_prompt"]
    again = client.post(f"/api/live/{sid}/answer", headers=csrf, json={"text": "red"})
    assert again.status_code == 400 and "not interrupted" in again.json()["error"]
    unknown = client.post("/api/live", headers=csrf, json={"prompt": "x", "models": {
        "painter": "scripted:t2i"}})
    assert unknown.status_code == 400 and "unknown role" in unknown.json()["error"]
